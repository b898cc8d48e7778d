"""The small browser interface the rest of the service uses; pyppeteer stays behind it.

``capture/`` sees a ``PageDriver`` (DevTools commands and events, evaluate,
navigation, selector waits) and the errors below, never a pyppeteer object.
The pool sees a ``BrowserDriver`` (contexts, liveness probe, close).

What this layer guarantees on top of pyppeteer (with ``devtools``' connection and sessions):

* a dropped DevTools connection fails every pending and future call at once
  with ``ConnectionLost``, with no busy loop;
* every call has a bound (``CALL_BOUND``; browser-level calls take their own,
  shorter one), so nothing here can wait for ever on a hung browser;
* a page whose renderer died says so (``PageDriver.crashed``, with Chromium's
  termination status), and that page's death never drops the connection the
  browser's other pages share (hazards.guard_page).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

from pyppeteer.browser import Browser, BrowserContext
from pyppeteer.errors import BrowserError, ElementHandleError, NetworkError, PageError
from pyppeteer.helper import getExceptionMessage, valueFromRemoteObject
from pyppeteer.page import Page

from .devtools import is_connection_lost
from .hazards import guard_page, watch_popups
from .pages import open_page
from .pipe import PipeConnection

T = TypeVar("T")

# Beyond any capture deadline (<= 30 s): the caller's deadline ends a page call first, this
# bound only guarantees that no call outlives a deadline somebody forgot.
CALL_BOUND = 45.0
DOWNLOADS_DENIED = {"behavior": "deny"}


class DriverError(Exception):
    """A browser call failed."""


class ConnectionLost(DriverError):
    """The browser, its DevTools socket or the page's renderer went away."""


class ProtocolError(DriverError):
    """The browser refused a command (bad parameters, a state it cannot be in)."""


class ScriptError(DriverError):
    """Script evaluated in the page threw."""


class NavigationFailed(DriverError):
    """The main document did not load; the message carries Chromium's net error (``net::ERR_…``)."""


class CallTimeout(DriverError):
    """A browser call outlived its bound: the browser is hung."""


def _translate(exc: BaseException) -> BaseException:
    if is_connection_lost(exc) or isinstance(exc, (ConnectionError, BrowserError)):
        return ConnectionLost(str(exc))
    if isinstance(exc, PageError):
        return NavigationFailed(str(exc))
    if isinstance(exc, ElementHandleError):
        return ScriptError(str(exc))
    if isinstance(exc, NetworkError):
        text = str(exc)
        # A renderer that crashed under a call reports "Target crashed" / "context destroyed".
        if "Target crashed" in text or "Inspected target navigated or closed" in text:
            return ConnectionLost(text)
        return ProtocolError(text)
    return exc


async def bounded(call: Awaitable[T], bound: float) -> T:
    """``call`` with pyppeteer's errors turned into ours, and at most ``bound`` seconds."""
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs a coroutine as a task of
        # its own, and every DevTools call of a capture comes through here.
        async with asyncio.timeout(bound):
            return await call
    except TimeoutError:
        # An outer deadline (asyncio.timeout) cancels us with the same error type: only ours is a hang.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise CallTimeout(f"no answer from the browser within {bound:g} s") from None
    except DriverError:
        raise
    except Exception as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


class PageDriver:
    """One page (tab) of a browser context: what a capture may do with it."""

    def __init__(self, page: Page) -> None:
        self._page = page
        # Set to Chromium's termination status ("killed", "crashed", "oom", ...) when the renderer dies.
        self.crashed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._state: dict[str, dict[str, Any]] = {}  # the last parameters of each send_state method

    def _renderer_died(self, status: str) -> None:
        if not self.crashed.done():
            self.crashed.set_result(status)

    @property
    def main_frame_id(self) -> str:
        frame = self._page.mainFrame
        return frame._id if frame is not None else ""

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One DevTools command on this page's session."""
        result = await bounded(self._page._client.send(method, params or {}), CALL_BOUND)
        return result or {}

    async def send_state(self, method: str, params: dict[str, Any]) -> None:
        """A command that sets page state (an emulation): not sent again when this page's last
        ``method`` had the same ``params``, so what a warm page was primed with costs nothing."""
        if self._state.get(method) == params:
            return
        self._state.pop(method, None)  # unknown until the browser has answered
        await self.send(method, params)
        self._state[method] = params

    def on(self, event: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handler(params)`` for every DevTools ``event`` of this page (e.g. ``Network.loadingFailed``)."""
        self._page._client.on(event, handler)

    async def evaluate(self, function: str, *args: Any) -> Any:
        """Call the JavaScript ``function`` with JSON ``args`` in the page; awaits a returned promise."""
        return await bounded(self._evaluate(function, args), CALL_BOUND)

    async def _evaluate(self, function: str, args: tuple[Any, ...]) -> Any:
        # One round trip, the value returned by value: pyppeteer's evaluate takes three (a handle,
        # then its value, then its release), on every capture's page checks.
        context = await self._page.mainFrame.executionContext()
        try:
            answer = await self._page._client.send("Runtime.callFunctionOn", {
                "functionDeclaration": function,
                "executionContextId": context._contextId,
                "arguments": [_argument(arg) for arg in args],
                "returnByValue": True,
                "awaitPromise": True,
                "userGesture": True,
            })
        except NetworkError as exc:
            if any(text in str(exc) for text in _NOT_BY_VALUE):
                return None  # a value JSON cannot carry (a DOM node, a cycle): as pyppeteer did
            if "Cannot find context with specified id" in str(exc):
                raise NetworkError("Execution context was destroyed, most likely because of a navigation.") from exc
            raise
        details = answer.get("exceptionDetails")
        if details:
            raise ScriptError(f"Evaluation failed: {getExceptionMessage(details)}")
        return valueFromRemoteObject(answer.get("result") or {})

    async def goto(self, url: str, wait_until: str) -> None:
        """Navigate and wait for ``load``, ``domcontentloaded``, ``networkidle0`` or ``networkidle2``."""
        await bounded(self._page.goto(url, waitUntil=wait_until, timeout=0), CALL_BOUND)

    async def set_content(self, html: str) -> None:
        await bounded(self._page.setContent(html), CALL_BOUND)

    async def wait_for_selector(self, selector: str) -> None:
        """Until an element matching ``selector`` is visible."""
        await bounded(self._page.waitForSelector(selector, visible=True, timeout=0), CALL_BOUND)

    async def add_style_tag(self, css: str) -> None:
        await bounded(self._page.addStyleTag(content=css), CALL_BOUND)

    async def set_bypass_csp(self, enabled: bool) -> None:
        await bounded(self._page.setBypassCSP(enabled), CALL_BOUND)

    async def grant_permissions(self, origin: str, permissions: list[str]) -> None:
        """Grant ``permissions`` (e.g. ``geolocation``) to ``origin`` only, in this page's context."""
        context = self._page.target.browserContext
        params: dict[str, Any] = {"origin": origin, "permissions": permissions}
        if context._id:  # the default context has none
            params["browserContextId"] = context._id
        await bounded(self._page.browser._connection.send("Browser.grantPermissions", params), CALL_BOUND)


_NOT_BY_VALUE = ("Object reference chain is too long", "Object couldn't be returned by value")


def _argument(value: Any) -> dict[str, Any]:
    if isinstance(value, float) and math.isinf(value):
        return {"unserializableValue": "Infinity" if value > 0 else "-Infinity"}
    return {"value": value}


Prime = Callable[[PageDriver], Awaitable[None]]  # what runs on a new page before it is handed out


class BrowserDriver:
    """One connected Chromium: contexts, a liveness probe, close."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._pages: weakref.WeakValueDictionary[str, PageDriver] = weakref.WeakValueDictionary()  # by target id
        watch_popups(browser)
        browser._connection.on("Target.targetCrashed", self._target_crashed)

    def _target_crashed(self, event: dict[str, Any]) -> None:
        page = self._pages.get(event.get("targetId", ""))
        if page is not None:
            page._renderer_died(str(event.get("status") or "crashed"))

    @classmethod
    async def connect_pipe(cls, events: IO[bytes], commands: IO[bytes], bound: float) -> BrowserDriver:
        """The browser this process started with ``--remote-debugging-pipe`` (pipe.py); both
        files are closed if the connection cannot be made."""

        async def connect() -> Browser:
            connection = await PipeConnection.open(events, commands)
            try:
                contexts = (await connection.send("Target.getBrowserContexts")).get("browserContextIds", [])
                return await Browser.create(connection, contexts, False, None, None,
                                            lambda: connection.send("Browser.close"))
            except BaseException:
                await connection.dispose()
                raise

        try:
            return cls(await bounded(connect(), bound))
        except BaseException:
            events.close()  # the same file objects the transports hold: closing twice is harmless
            commands.close()
            raise

    @property
    def connected(self) -> bool:
        return not self._browser._connection.dropped

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        self._browser.on("disconnected", callback)

    async def probe(self, bound: float) -> None:
        """Raise unless the browser answers a trivial call within ``bound`` (CallTimeout: hung)."""
        await bounded(self._browser._connection.send("Browser.getVersion"), bound)

    async def new_context(self, params: dict[str, Any], bound: float,
                          prime: Prime | None = None) -> tuple[str, PageDriver]:
        """A fresh incognito context (``params``: e.g. its proxy) with one blank page, on which
        ``prime`` (e.g. the default emulation) has run.

        Half-way failures dispose what was made, so nothing lingers in the browser.
        """
        made: list[str] = []
        try:
            driver = await bounded(self._new_context(params, made, prime), bound)
        except BaseException:
            for context_id in made:
                with contextlib.suppress(Exception):
                    await self.dispose_context(context_id, bound)
            raise
        return made[0], driver

    async def _new_context(self, params: dict[str, Any], made: list[str], prime: Prime | None) -> PageDriver:
        connection = self._browser._connection
        context_id = (await connection.send("Target.createBrowserContext", params))["browserContextId"]
        made.append(context_id)
        self._browser._contexts[context_id] = BrowserContext(self._browser, context_id)  # its targets' context
        await connection.send("Browser.setDownloadBehavior", {**DOWNLOADS_DENIED, "browserContextId": context_id})
        page = await open_page(self._browser, connection, context_id)
        guard_page(page)
        driver = PageDriver(page)
        self._pages[page.target._targetId] = driver
        if prime is not None:
            await prime(driver)
        return driver

    async def dispose_context(self, context_id: str, bound: float) -> None:
        """Close the context and its renderers (raises CallTimeout when the browser is hung)."""
        self._browser._contexts.pop(context_id, None)
        if self.connected:
            await bounded(self._browser._connection.send("Target.disposeBrowserContext", {"browserContextId": context_id}), bound)

    async def close(self, bound: float) -> None:
        """Ask Chromium to exit, then drop the connection (the launcher kills what remains)."""
        with contextlib.suppress(Exception):
            if self.connected:
                await bounded(self._browser._connection.send("Browser.close"), bound)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._browser._connection.dispose(), bound)

    def popups_open(self) -> int:
        """Pages some page opened (window.open, target=_blank) that are still open."""
        return sum(
            1
            for target in self._browser.targets()
            if target.type == "page" and target._targetInfo.get("openerId")
        )
