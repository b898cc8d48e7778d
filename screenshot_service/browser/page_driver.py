"""PageDriver: one page (tab) of a browser context, as ``capture/`` sees it.

DevTools commands and events, evaluate, navigation and selector waits, each
through ``bounded`` (driver_errors.py); a page whose renderer died says so
(``PageDriver.crashed``, with Chromium's termination status).  Every script of
the service runs in its isolated world (isolated_world.py), never the page's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from pyppeteer.errors import NetworkError
from pyppeteer.helper import getExceptionMessage
from pyppeteer.page import Page

from . import page_scripts
from .driver_errors import CALL_BOUND, ScriptError, bounded
from .isolated_world import DESTROYED, NAVIGATED, UNKNOWN_CONTEXT, IsolatedWorld


class PageDriver:
    """One page (tab) of a browser context: what a capture may do with it."""

    def __init__(self, page: Page) -> None:
        self._page = page
        # Set to Chromium's termination status ("killed", "crashed", "oom", ...) when the renderer dies.
        self.crashed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._state: dict[str, dict[str, Any]] = {}  # the last parameters of each send_state method
        self._world = IsolatedWorld(page)  # where the service's own scripts run

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

    async def evaluate(self, function: str, *args: Any, within: float | None = None) -> Any:
        """Call the JavaScript ``function`` with JSON ``args`` in the service's isolated world of the
        main frame (isolated_world.py): the page's DOM, never its globals; awaits a returned promise.

        The answer is whatever JSON the script returned: callers type-check it (capture/readback.py).
        ``within``: seconds after which a script that waits gets None instead (timers and animation
        frames are the page's window's, and a page can cancel every one of them).
        """
        if within is None:
            return await bounded(self._evaluate(function, args), CALL_BOUND)
        try:
            async with asyncio.timeout(within):
                return await bounded(self._evaluate(function, args), CALL_BOUND)
        except TimeoutError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the caller's deadline, not ours
                raise
            return None

    async def _evaluate(self, function: str, args: tuple[Any, ...]) -> Any:
        # One round trip, the value returned by value: pyppeteer's evaluate takes three (a handle,
        # then its value, then its release), on every capture's page checks.
        for attempt in (1, 2):
            context = await self._world.context_id()
            try:
                answer = await self._page._client.send("Runtime.callFunctionOn", {
                    "functionDeclaration": function,
                    "executionContextId": context,
                    "arguments": [_argument(arg) for arg in args],
                    "returnByValue": True,
                    "awaitPromise": True,
                    "userGesture": True,
                })
            except NetworkError as exc:
                if any(text in str(exc) for text in _NOT_BY_VALUE):
                    return None  # a value JSON cannot carry (a DOM node, a cycle): as pyppeteer did
                if UNKNOWN_CONTEXT not in str(exc):
                    raise
                # The document was replaced before the call ran: once more, in the new document's world.
                self._world.forget(context)
                if attempt == 2:
                    raise NetworkError(f"{DESTROYED}, most likely because of a navigation.") from exc
                continue
            details = answer.get("exceptionDetails")
            if details:
                raise ScriptError(f"Evaluation failed: {getExceptionMessage(details)}")
            return _value(answer.get("result") or {})
        raise AssertionError("unreachable")

    async def goto(self, url: str, wait_until: str) -> None:
        """Navigate and wait for ``load``, ``domcontentloaded``, ``networkidle0`` or ``networkidle2``."""
        await bounded(self._page.goto(url, waitUntil=wait_until, timeout=0), CALL_BOUND)

    async def set_content(self, html: str) -> None:
        """Replace the main frame's document with ``html``; its scripts run.  DevTools writes it: no script
        of ours runs in the page's world (pyppeteer's document.write there broke on a page whose html
        replaced ``document.close``), and the old document's isolated world is never made."""
        await self.send("Page.setDocumentContent", {"frameId": self.main_frame_id, "html": html})

    async def wait_for_selector(self, selector: str) -> None:
        """Until an element matching ``selector`` is visible, through any navigation meanwhile."""
        await bounded(self._wait_visible(selector), CALL_BOUND)

    async def _wait_visible(self, selector: str) -> None:
        while True:
            try:
                # A slice at a time, each bounded here too: a page that cancels every timer and
                # observer callback of its window cannot make the wait outlast the slice.
                async with asyncio.timeout(page_scripts.WAIT_SLICE + 1.0):
                    found = await self._evaluate(page_scripts.WAIT_VISIBLE, (selector, page_scripts.WAIT_SLICE * 1000))
            except TimeoutError:  # this slice's bound: the outer deadline's would be a cancellation
                continue
            except NetworkError as exc:
                # The document went while the call waited: the new one is searched anew, in its
                # own world.  A crashed renderer is not a new document.
                if self.crashed.done() or not any(text in str(exc) for text in (DESTROYED, NAVIGATED)):
                    raise
                continue
            if found is True:
                return

    async def add_style_tag(self, css: str) -> None:
        await self.evaluate(page_scripts.ADD_STYLE, css)

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


def _value(result: dict[str, Any]) -> Any:
    """The JSON a script returned; numbers JSON cannot carry as floats, a BigInt as None."""
    special = result.get("unserializableValue")
    if special is not None:
        return _UNSERIALIZABLE.get(special)
    return result.get("value")


_UNSERIALIZABLE = {"-0": -0.0, "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _argument(value: Any) -> dict[str, Any]:
    if isinstance(value, float) and math.isinf(value):
        return {"unserializableValue": "Infinity" if value > 0 else "-Infinity"}
    return {"value": value}


Prime = Callable[[PageDriver], Awaitable[None]]  # what runs on a new page before it is handed out
