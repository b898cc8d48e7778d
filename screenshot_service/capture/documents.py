"""The main frame's documents during one capture: which navigation is under way, which document
is committed, and how far each has loaded (DevTools Page and Network events, no round trip).

A navigation the page starts (a script setting ``location``, a form, a meta refresh) shows up as
``Page.frameRequestedNavigation`` and then a ``Document`` request of the main frame; it ends
either committed (``Page.frameNavigated`` with a new ``loaderId``) or abandoned (a download, a
204: the frame just stops loading).  Fragment changes and ``history.pushState`` are neither:
they keep the document, so nothing here waits for them.  loading.py decides what to do with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver

# wait_until -> the lifecycle event of a document that satisfies it (``ready`` waits for more later)
LIFECYCLE = {"load": "load", "domcontentloaded": "DOMContentLoaded", "ready": "DOMContentLoaded",
             "networkidle0": "networkIdle", "networkidle2": "networkAlmostIdle"}


class DocumentTracker:
    """Navigations of one page's main frame, as one capture sees them."""

    def __init__(self, page: PageDriver) -> None:
        self.page = page
        self._requested = False  # the page asked for a navigation of its main frame, no request yet
        self._requests: set[str] = set()  # the main frame's document requests neither committed nor failed
        self.committed: str | None = None  # loaderId of the latest document (None: the one before this capture)
        self.judged: str | None = None  # the document the capture last waited for and judged
        self.commits = 0  # documents committed during this capture
        self._lifecycle: dict[str, set[str]] = {}  # loaderId -> lifecycle events seen
        self._changed = asyncio.Event()
        page.on("Page.frameRequestedNavigation", self._on_requested)
        page.on("Network.requestWillBeSent", self._on_request)
        page.on("Network.loadingFailed", self._on_ended)
        page.on("Network.loadingFinished", self._on_ended)
        page.on("Page.frameNavigated", self._on_navigated)
        page.on("Page.navigatedWithinDocument", self._on_same_document)
        page.on("Page.frameStoppedLoading", self._on_stopped)
        page.on("Page.lifecycleEvent", self._on_lifecycle)

    @property
    def navigating(self) -> bool:
        """A navigation of the main frame started and has neither committed nor ended."""
        return self._requested or bool(self._requests)

    def moved(self) -> bool:
        """The page is on (or on its way to) another document than the one last judged."""
        return self.navigating or self.committed != self.judged

    async def loaded(self, loader: str, wait_until: str) -> bool:
        """Until document ``loader`` reached ``wait_until`` (True), or the page left it first (False)."""
        def left() -> bool:
            return self.navigating or self.committed != loader

        await self.until(lambda: left() or LIFECYCLE[wait_until] in self._lifecycle.get(loader, ()))
        return not left()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Until ``condition`` holds; checked after every event (the capture's deadline bounds it)."""
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    def _main(self, frame_id: object) -> bool:
        return bool(frame_id) and frame_id == self.page.main_frame_id

    def _update(self) -> None:
        self._changed.set()

    def _on_requested(self, event: dict[str, Any]) -> None:
        if self._main(event.get("frameId")) and event.get("disposition", "currentTab") == "currentTab":
            self._requested = True
            self._update()

    def _on_request(self, event: dict[str, Any]) -> None:
        if event.get("type") == "Document" and self._main(event.get("frameId")):
            self._requested = False
            self._requests.add(str(event.get("requestId")))
            self._update()

    def _on_ended(self, event: dict[str, Any]) -> None:
        # Normally after the commit; else the request never became a document (a download, a
        # 204), or failed (an error page commits next)
        if str(event.get("requestId")) in self._requests:
            self._requests.discard(str(event.get("requestId")))
            self._update()

    def _on_navigated(self, event: dict[str, Any]) -> None:
        frame = event.get("frame") or {}
        if frame.get("parentId") or not self._main(frame.get("id")) or not frame.get("loaderId"):
            return
        loader = str(frame["loaderId"])
        if loader != self.committed:
            self.commits += 1
        self.committed, self._requested = loader, False
        self._requests.clear()  # the earlier ones are cancelled by this document's commit
        self._lifecycle.setdefault(loader, set())
        self._update()

    def _on_same_document(self, event: dict[str, Any]) -> None:
        if self._main(event.get("frameId")):  # a fragment or history change: the document stays
            self._requested = False
            self._update()

    def _on_stopped(self, event: dict[str, Any]) -> None:
        # No new document is on its way unless its request is in flight: a stop can trail the
        # next navigation's start.
        if not self._main(event.get("frameId")):
            return
        self._requested = False
        if self.committed is not None:  # as pyppeteer does: a frame that stopped loading has loaded
            self._lifecycle.setdefault(self.committed, set()).update(("DOMContentLoaded", "load"))
        self._update()

    def _on_lifecycle(self, event: dict[str, Any]) -> None:
        if not self._main(event.get("frameId")) or not event.get("loaderId"):
            return
        seen = self._lifecycle.setdefault(str(event["loaderId"]), set())
        if event.get("name") == "init":
            seen.clear()
        else:
            seen.add(str(event.get("name")))
        self._update()
