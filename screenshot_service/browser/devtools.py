"""The service's DevTools connection and sessions: classes of its own that pyppeteer's run on.

pyppeteer's ``Browser``, ``Target`` and ``Page`` only call ``send``,
``createSession``, ``setClosedCallback``, ``on``, ``dispose`` and ``url`` on a
connection, and ``send``/``on`` on a session, so they work unchanged on these;
pyppeteer's own ``Connection`` and ``CDPSession`` stay as released for any other
user in the process.  What these do that pyppeteer 2.0's do not:

* A call whose caller gave up (a deadline cancelled its future) is never settled
  again: pyppeteer's ``set_result`` raised InvalidStateError inside the reader and
  dropped the connection for every capture on that browser.
* A dropped connection fails every pending and later call at once with
  ``NetworkError`` (never a ``None`` result, never a wait).
* Page sessions are attached *flat*: commands and events carry a ``sessionId`` on
  the one connection, as Puppeteer does, instead of pyppeteer's
  ``Target.sendMessageToTarget`` (each message JSON inside JSON: a screenshot
  escaped and parsed twice, on both ends).  Sessions a page auto-attaches
  (workers) still come wrapped, through their parent session.

A transport (pipe.py) subclasses ``DevToolsConnection``: it writes what ``_post``
is given, hands each message it reads to ``dispatch`` and calls ``dispose`` when
its peer goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from pyee import EventEmitter
from pyppeteer.connection import CDPSession
from pyppeteer.errors import NetworkError

CLOSED = "Connection closed"  # the text of every error a dropped connection produces

# Calls awaiting an answer, by message id: the caller's future and the method, for error texts.
Pending = dict[int, tuple[asyncio.Future[Any], str]]


def _closed_error(method: str) -> NetworkError:
    return NetworkError(f"Protocol error ({method}): {CLOSED}.")


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # its caller gave up (cancelled by a deadline)
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # mark retrieved: nobody may be waiting any more
    else:
        future.set_result(result)


def _answer(pending: Pending, message: dict[str, Any]) -> None:
    """Settle the call ``message`` answers, if its caller is still known."""
    call = pending.pop(message["id"], None)
    if call is None:
        return
    future, method = call
    error = message.get("error")
    if error:
        text = f"Protocol error ({method}): {error.get('message')}"
        if "data" in error:
            text += f" {error['data']}"
        _settle(future, error=NetworkError(text))
    else:
        _settle(future, result=message.get("result"))


def _fail_all(pending: Pending) -> None:
    for future, method in pending.values():
        _settle(future, error=_closed_error(method))
    pending.clear()


def is_connection_lost(error: BaseException) -> bool:
    """True when ``error`` is a call failed by a dropped connection or a closed session (``CLOSED``)."""
    return isinstance(error, NetworkError) and CLOSED in str(error)


class DevToolsConnection(EventEmitter):
    """One browser's DevTools connection, over a transport a subclass provides."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str) -> None:
        super().__init__()
        self._loop = loop  # pyppeteer's Browser and Target schedule their work on it
        self._url = url
        self._last_id = 0  # one id space per connection: flat answers are routed by sessionId, then id
        self._pending: Pending = {}
        self._sessions: dict[str, DevToolsSession] = {}  # flat sessions, by sessionId
        self._closed_callback: Callable[[], None] | None = None
        self.dropped = False  # once True, for good: every call fails at once

    @property
    def url(self) -> str:
        return self._url

    def setClosedCallback(self, callback: Callable[[], None]) -> None:  # pyppeteer's name for it
        self._closed_callback = callback

    def _post(self, message: str) -> None:
        """Hand one encoded message to the transport; a failed write drops the connection."""
        raise NotImplementedError

    async def _close_transport(self) -> None:
        raise NotImplementedError

    def send(self, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        """A browser-level command; the future fails with NetworkError if the connection drops first."""
        return self.call(method, params, self._pending, None)

    def call(self, method: str, params: dict[str, Any] | None, pending: Pending,
             session_id: str | None) -> asyncio.Future[Any]:
        """Send a command, registering its future in ``pending`` (the connection's or a flat session's)."""
        future = self._loop.create_future()
        if self.dropped:
            _settle(future, error=_closed_error(method))
            return future
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        pending[self._last_id] = (future, method)
        self._post(json.dumps(message))
        return future

    async def createSession(self, target_info: dict[str, Any]) -> DevToolsSession:  # pyppeteer's name for it
        """A flat session attached to the target (pyppeteer's Target asks for its sessions here)."""
        answer = await self.send("Target.attachToTarget", {"targetId": target_info["targetId"], "flatten": True})
        session = DevToolsSession(self, target_info["type"], answer["sessionId"], self._loop, flat=True)
        self._sessions[session.session_id] = session
        return session

    def dispatch(self, message: dict[str, Any]) -> None:
        """Route one decoded message: a flat session's, an answer, or a browser event."""
        session_id = message.get("sessionId")
        if session_id is not None:
            session = self._sessions.get(session_id)
            if session is not None:
                session.dispatch(message)
        elif "id" in message:
            _answer(self._pending, message)
        else:
            method, params = message.get("method", ""), message.get("params", {})
            if method == "Target.detachedFromTarget":
                session = self._sessions.pop(params.get("sessionId"), None)
                if session is not None:
                    session._on_closed()
            elif method != "Target.receivedMessageFromTarget":  # no wrapped session hangs off the browser
                self.emit(method, params)

    async def dispose(self) -> None:
        """Fail every pending call, close every session, then the transport; later calls fail at once."""
        if self.dropped:
            return
        self.dropped = True
        callback, self._closed_callback = self._closed_callback, None
        if callback is not None:
            callback()
        _fail_all(self._pending)
        for session in self._sessions.values():
            session._on_closed()
        self._sessions.clear()
        await self._close_transport()


class DevToolsSession(CDPSession):
    """A session on one target: flat on the connection, or wrapped in its parent session's messages."""

    def __init__(self, connection: DevToolsConnection | DevToolsSession, target_type: str, session_id: str,
                 loop: asyncio.AbstractEventLoop, *, flat: bool) -> None:
        # pyppeteer's Page.close sends through ``_connection``: for a flat session, the connection itself.
        super().__init__(connection, target_type, session_id, loop)
        self._flat = flat
        self._pending: Pending = {}
        self._children: dict[str, DevToolsSession] = {}  # wrapped sessions (workers), by sessionId

    @property
    def session_id(self) -> str:
        return str(self._sessionId)

    def send(self, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        parent = self._connection
        if parent is None:
            future = self._loop.create_future()
            _settle(future, error=_closed_error(method))
            return future
        if self._flat:
            return parent.call(method, params, self._pending, self._sessionId)
        return self._send_wrapped(parent, method, params)

    def _send_wrapped(self, parent: DevToolsSession, method: str, params: dict[str, Any] | None) -> asyncio.Future[Any]:
        self._lastId += 1
        message_id = self._lastId
        future = self._loop.create_future()
        self._pending[message_id] = (future, method)
        inner = json.dumps({"id": message_id, "method": method, "params": params or {}})
        carrier = parent.send("Target.sendMessageToTarget", {"sessionId": self._sessionId, "message": inner})

        def relay(sent: asyncio.Future[Any]) -> None:
            # The carrier failing (its session or the connection gone) fails the inner call too.
            if not sent.cancelled() and sent.exception() is not None:
                call = self._pending.pop(message_id, None)
                if call is not None:
                    _settle(call[0], error=_closed_error(method))

        carrier.add_done_callback(relay)
        return future

    def _on_message(self, message: str) -> None:
        """A wrapped session's message, as its parent received it."""
        self.dispatch(json.loads(message))

    def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("id"):
            _answer(self._pending, message)
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Target.receivedMessageFromTarget":
            child = self._children.get(params.get("sessionId"))
            if child is not None:
                child._on_message(params.get("message"))
        elif method == "Target.detachedFromTarget":
            child = self._children.pop(params.get("sessionId"), None)
            if child is not None:
                child._on_closed()
        self.emit(method, params)

    def _createSession(self, target_type: str, session_id: str) -> DevToolsSession:  # pyppeteer's name for it
        """A wrapped session on a target this one auto-attached (pyppeteer's Page makes workers' here)."""
        child = DevToolsSession(self, target_type, session_id, self._loop, flat=False)
        self._children[session_id] = child
        return child

    def _on_closed(self) -> None:
        _fail_all(self._pending)
        for child in self._children.values():
            child._on_closed()
        self._children.clear()
        self._connection = None
