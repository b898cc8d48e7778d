"""Fixes for pyppeteer 2.0's DevTools plumbing, applied once at import.

pyppeteer resolves the future of a DevTools call without checking whether the
caller already gave up on it.  A capture cancelled by its deadline leaves such
a future cancelled; when Chromium's answer arrives, ``set_result`` raises
InvalidStateError inside the connection's receive loop, which then dies and
takes every other capture on that browser with it.  These replacements only
add the missing ``done()`` checks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pyppeteer import connection
from pyppeteer.connection import CDPSession, Connection, _createProtocolError, _rewriteError


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # mark retrieved: nobody may be waiting any more
    else:
        future.set_result(result)


def _connection_on_response(self: Connection, msg: dict[str, Any]) -> None:
    callback = self._callbacks.pop(msg.get("id", -1), None)
    if callback is None:
        return
    if msg.get("error"):
        _settle(callback, error=_createProtocolError(callback.error, callback.method, msg))
    else:
        _settle(callback, result=msg.get("result"))


async def _connection_on_close(self: Connection) -> None:
    if self._closeCallback:
        self._closeCallback()
        self._closeCallback = None
    for callback in self._callbacks.values():
        _settle(callback, error=_rewriteError(callback.error, f"Protocol error {callback.method}: Target closed."))
    self._callbacks.clear()
    for session in self._sessions.values():
        session._on_closed()
    self._sessions.clear()
    if hasattr(self, "connection"):
        await self.connection.close()
    if self._recv_fut is not None and not self._recv_fut.done():
        self._recv_fut.cancel()


def _session_on_message(self: CDPSession, msg: str) -> None:
    obj = json.loads(msg)
    message_id = obj.get("id")
    if message_id:
        callback = self._callbacks.pop(message_id, None)
        if callback is None:
            return
        if obj.get("error"):
            _settle(callback, error=_createProtocolError(callback.error, callback.method, obj))
        else:
            _settle(callback, result=obj.get("result"))
        return
    params = obj.get("params", {})
    if obj.get("method") == "Target.receivedMessageFromTarget":
        session = self._sessions.get(params.get("sessionId"))
        if session:
            session._on_message(params.get("message"))
    elif obj.get("method") == "Target.detachFromTarget":
        session = self._sessions.pop(params.get("sessionId"), None)
        if session:
            session._on_closed()
    self.emit(obj.get("method"), obj.get("params"))


def _session_on_closed(self: CDPSession) -> None:
    for callback in self._callbacks.values():
        _settle(callback, error=_rewriteError(callback.error, f"Protocol error {callback.method}: Target closed."))
    self._callbacks.clear()
    self._connection = None


def apply() -> None:
    Connection._on_response = _connection_on_response
    Connection._on_close = _connection_on_close
    CDPSession._on_message = _session_on_message
    CDPSession._on_closed = _session_on_closed


_ = connection  # the module patched
apply()
