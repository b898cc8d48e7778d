"""The service's own JavaScript world in a page's main frame.

DevTools gives each frame any number of isolated worlds (``Page.createIsolatedWorld``):
they share the page's DOM but not its JavaScript globals, so nothing a page
defines (``String = ...``, a patched prototype, a throwing ``document.getAnimations``)
is what the service's scripts call.  A world lives as long as its document: it is
made on first use and again after the frame got a new document (the frame's
loader changed, or DevTools reported the world destroyed), at most one round trip
per document.  The page never sees the world, so it is granted nothing beyond
what the page's own origin may do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyppeteer.page import Page

WORLD_NAME = "__screenshot_service__"

# DevTools' answer to a call into a world whose document has gone: the call never ran.
UNKNOWN_CONTEXT = "Cannot find context with specified id"
# ... and to a call whose document went while it ran, or while it awaited its promise.
DESTROYED = "Execution context was destroyed"
NAVIGATED = "Inspected target navigated or closed"


class IsolatedWorld:
    """The service's world in ``page``'s main frame, for its current document."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._context_id: int | None = None
        self._document: tuple[str, str] | None = None  # (frame id, loader id) the world was made in
        self._making: asyncio.Lock = asyncio.Lock()
        page._client.on("Runtime.executionContextDestroyed", self._on_destroyed)
        page._client.on("Runtime.executionContextsCleared", self._on_cleared)

    def _current_document(self) -> tuple[str, str]:
        frame = self._page.mainFrame
        return (frame._id, frame._loaderId) if frame is not None else ("", "")

    def _on_destroyed(self, event: dict[str, Any]) -> None:
        if event.get("executionContextId") == self._context_id:
            self._context_id = None

    def _on_cleared(self, _event: dict[str, Any]) -> None:
        self._context_id = None

    def forget(self, context_id: int) -> None:
        """``context_id`` turned out to be gone (its document was replaced before DevTools said so)."""
        if self._context_id == context_id:
            self._context_id = None

    async def context_id(self) -> int:
        """The world's execution context for the main frame's current document, made if needed."""
        async with self._making:  # concurrent first calls share one world
            document = self._current_document()
            if self._context_id is None or self._document != document:
                answer = await self._page._client.send("Page.createIsolatedWorld", {
                    "frameId": document[0], "worldName": WORLD_NAME, "grantUniveralAccess": False})
                self._context_id, self._document = int(answer["executionContextId"]), document
            return self._context_id
