"""Fixes for pyppeteer 2.0's DevTools plumbing, applied once at import.

Three failure modes of its ``Connection`` are mended here:

* A DevTools future cancelled by a deadline was later resolved with
  ``set_result``, which raised InvalidStateError inside the receive loop and
  killed the connection for every capture on that browser.  Every settle now
  checks ``done()`` first.
* A websocket that never opened, or that dropped, left ``_async_send`` spinning
  (``while not self._connected: await asyncio.sleep(0)``): a core burned for
  good, and the caller's future never settled (a relaunch hung for ever).
  Sends now wait for the connection to open or fail, and a closed connection
  fails every pending and future call at once with ``NetworkError``.
* A send that hit a closed socket resolved its caller with ``None`` instead of
  an error.

And one cost: pyppeteer talks to pages through ``Target.sendMessageToTarget``,
each message JSON inside JSON (a screenshot escaped and parsed twice, on both
ends).  Page sessions are attached *flat* instead: commands and events carry
a ``sessionId`` on the one socket, as Puppeteer does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pyppeteer.connection import CDPSession, Connection, _createProtocolError, _rewriteError
from pyppeteer.errors import NetworkError
from pyppeteer.page import Page
from websockets.exceptions import ConnectionClosed
from websockets.legacy.client import connect as ws_connect

log = logging.getLogger("screenshot_service.browser")

CLOSED = "Connection closed"  # the text of every error a dropped connection produces


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # mark retrieved: nobody may be waiting any more
    else:
        future.set_result(result)


def _failed(loop: asyncio.AbstractEventLoop, method: str) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = loop.create_future()
    _settle(future, error=NetworkError(f"Protocol error ({method}): {CLOSED}."))
    return future


def _connection_init(self: Connection, url: str, loop: asyncio.AbstractEventLoop, delay: int = 0) -> None:
    super(Connection, self).__init__()
    self._url = url
    self._lastId = 0
    self._callbacks = {}
    self._delay = delay / 1000
    self._loop = loop
    self._sessions = {}
    self._connected = False
    self._dropped = False  # once True, for good: every call fails at once
    self._opened = loop.create_future()  # settles when the socket opens or fails to
    self._closeCallback = None
    # No permessage-deflate: on a loopback socket compressing every message (screenshots
    # included, on both ends) only costs CPU.
    self._ws = ws_connect(url, max_size=None, loop=loop, ping_interval=None, ping_timeout=None, compression=None)
    self._recv_fut = loop.create_task(self._recv_loop())


async def _recv_loop(self: Connection) -> None:
    try:
        async with self._ws as connection:
            self.connection = connection
            self._connected = True
            _settle(self._opened, result=None)
            while True:
                message = await connection.recv()
                if message:
                    await self._on_message(message)
    except (TimeoutError, ConnectionClosed, OSError, EOFError) as exc:
        log.debug("devtools connection ended: %r", exc)
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("devtools connection failed")
    finally:
        _settle(self._opened, error=NetworkError(CLOSED))
        if not self._dropped:
            self._loop.create_task(self.dispose())


async def _async_send(self: Connection, msg: str, callback_id: int) -> None:
    try:
        await asyncio.shield(self._opened)
        await self.connection.send(msg)
    except Exception:
        callback = self._callbacks.pop(callback_id, None)
        if callback is not None:
            _settle(callback, error=_rewriteError(callback.error, f"Protocol error ({callback.method}): {CLOSED}."))
        if not self._dropped:
            await self.dispose()


def _connection_send(self: Connection, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[Any]:
    if self._dropped:
        return _failed(self._loop, method)
    self._lastId += 1
    message_id = self._lastId
    msg = json.dumps({"id": message_id, "method": method, "params": params or {}})
    callback = self._loop.create_future()
    callback.error = NetworkError()
    callback.method = method
    self._callbacks[message_id] = callback
    self._post(msg, message_id)
    return callback


def _connection_post(self: Connection, msg: str, message_id: int) -> None:
    """Hand ``msg`` to the socket: the websocket's send is a coroutine, so it runs as a task."""
    self._loop.create_task(self._async_send(msg, message_id))


async def _connection_dispose(self: Connection) -> None:
    self._connected = False
    await self._on_close()


def _connection_on_response(self: Connection, msg: dict[str, Any]) -> None:
    callback = self._callbacks.pop(msg.get("id", -1), None)
    if callback is None:
        return
    if msg.get("error"):
        _settle(callback, error=_createProtocolError(callback.error, callback.method, msg))
    else:
        _settle(callback, result=msg.get("result"))


async def _connection_on_close(self: Connection) -> None:
    if self._dropped:
        return
    self._dropped = True
    if self._closeCallback:
        self._closeCallback()
        self._closeCallback = None
    for callback in self._callbacks.values():
        _settle(callback, error=_rewriteError(callback.error, f"Protocol error ({callback.method}): {CLOSED}."))
    self._callbacks.clear()
    for session in self._sessions.values():
        session._on_closed()
    self._sessions.clear()
    await self._close_transport()
    if not self._recv_fut.done():
        self._recv_fut.cancel()


async def _connection_close_transport(self: Connection) -> None:
    if hasattr(self, "connection"):
        try:
            await asyncio.wait_for(self.connection.close(), 2)
        except Exception:  # a hung peer: drop the transport instead of waiting on it
            transport = getattr(self.connection, "transport", None)
            if transport is not None:
                transport.abort()


async def _connection_on_message(self: Connection, message: str) -> None:
    dispatch(self, json.loads(message))


def dispatch(self: Connection, msg: dict[str, Any]) -> None:
    """Route one decoded DevTools message: a flat session's, an answer, or a browser event."""
    session_id = msg.get("sessionId")
    if session_id is not None:  # a flat session's answer or event
        session = self._sessions.get(session_id)
        if session is not None:
            _session_dispatch(session, msg)
    elif msg.get("id") in self._callbacks:
        self._on_response(msg)
    else:
        self._on_query(msg)


async def _connection_create_session(self: Connection, target_info: dict[str, Any]) -> CDPSession:
    response = await self.send("Target.attachToTarget", {"targetId": target_info["targetId"], "flatten": True})
    session_id = response["sessionId"]
    session = CDPSession(self, target_info["type"], session_id, self._loop)
    session._flat = True
    self._sessions[session_id] = session
    return session


def _flat_send(self: CDPSession, connection: Connection, method: str, params: dict[str, Any] | None) -> asyncio.Future[Any]:
    if connection._dropped:
        return _failed(self._loop, method)
    connection._lastId += 1  # one id space per socket: answers are routed by sessionId, then id
    message_id = connection._lastId
    msg = json.dumps({"id": message_id, "method": method, "params": params or {}, "sessionId": self._sessionId})
    callback = self._loop.create_future()
    callback.error = NetworkError()
    callback.method = method
    self._callbacks[message_id] = callback
    # A failed send drops the connection, which closes this session and fails the callback.
    connection._post(msg, message_id)
    return callback


def _session_send(self: CDPSession, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[Any]:
    if not self._connection:
        return _failed(self._loop, method)
    if getattr(self, "_flat", False):
        return _flat_send(self, self._connection, method, params)
    self._lastId += 1
    message_id = self._lastId
    msg = json.dumps({"id": message_id, "method": method, "params": params or {}})
    callback = self._loop.create_future()
    callback.error = NetworkError()
    callback.method = method
    self._callbacks[message_id] = callback
    outer = self._connection.send("Target.sendMessageToTarget", {"sessionId": self._sessionId, "message": msg})

    def relay(sent: asyncio.Future[Any]) -> None:
        # The carrier call failing (connection gone) must fail the inner call too.
        if not sent.cancelled() and sent.exception() is not None:
            failed = self._callbacks.pop(message_id, None)
            if failed is not None:
                _settle(failed, error=_rewriteError(failed.error, f"Protocol error ({method}): {CLOSED}."))

    outer.add_done_callback(relay)
    return callback


def _session_on_message(self: CDPSession, msg: str) -> None:
    _session_dispatch(self, json.loads(msg))


def _session_dispatch(self: CDPSession, obj: dict[str, Any]) -> None:
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
        _settle(callback, error=_rewriteError(callback.error, f"Protocol error ({callback.method}): {CLOSED}."))
    self._callbacks.clear()
    self._connection = None


async def _page_create(client: CDPSession, target: Any, ignoreHTTPSErrors: bool, defaultViewport: dict[str, Any] | None,
                       screenshotTaskQueue: list[Any] | None = None) -> Page:
    """pyppeteer's ``Page.create`` without the Security, Performance and Log domains: nothing
    here reads their events, and each one enabled is work in the renderer on every page."""
    await client.send("Page.enable")
    frame_tree = (await client.send("Page.getFrameTree"))["frameTree"]
    page = Page(client, target, frame_tree, ignoreHTTPSErrors, screenshotTaskQueue)
    await asyncio.gather(
        client.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False}),
        client.send("Page.setLifecycleEventsEnabled", {"enabled": True}),
        client.send("Network.enable", {}),
        client.send("Runtime.enable", {}),
    )
    if ignoreHTTPSErrors:
        await client.send("Security.setIgnoreCertificateErrors", {"ignore": True})
    if defaultViewport:
        await page.setViewport(defaultViewport)
    return page


def is_connection_lost(error: BaseException) -> bool:
    """True when ``error`` means the browser, its socket or the page's target went away."""
    text = str(error)
    return isinstance(error, (NetworkError, ConnectionError)) and (
        CLOSED in text or "Target closed" in text or "Session closed" in text or "Connection is closed" in text
    )


def apply() -> None:
    Connection.__init__ = _connection_init
    Connection._recv_loop = _recv_loop
    Connection._async_send = _async_send
    Connection.send = _connection_send
    Connection._post = _connection_post
    Connection._close_transport = _connection_close_transport
    Connection.dispose = _connection_dispose
    Connection._on_response = _connection_on_response
    Connection._on_close = _connection_on_close
    Connection._on_message = _connection_on_message
    Connection.createSession = _connection_create_session
    CDPSession.send = _session_send
    CDPSession._on_message = _session_on_message
    CDPSession._on_closed = _session_on_closed
    Page.create = staticmethod(_page_create)


apply()
