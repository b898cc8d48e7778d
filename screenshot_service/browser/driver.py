"""The small browser interface the rest of the service uses; pyppeteer stays behind it.

``capture/`` sees a ``PageDriver`` (page_driver.py: DevTools commands and events,
evaluate, navigation, selector waits) and the errors of driver_errors.py, never a
pyppeteer object.  The pool sees a ``BrowserDriver`` (here: contexts, liveness
probe, close).

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
import weakref
from collections.abc import Callable
from typing import IO, Any

from pyppeteer.browser import Browser, BrowserContext

from .driver_errors import bounded
from .hazards import guard_page, watch_popups
from .page_driver import PageDriver, Prime
from .pages import open_page
from .pipe import PipeConnection

DOWNLOADS_DENIED = {"behavior": "deny"}


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
