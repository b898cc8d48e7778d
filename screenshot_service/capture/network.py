"""What one capture's page has on the network: requests in flight, requests Chromium blocked, downloads.

Followed through DevTools Network events from the capture's session
(capture/session.py), installed before navigation so the first request is seen.
``settle`` is what full-page reveal, ``wait_until=ready`` and networkidle for
``html`` input wait on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver


class NetworkTracker:
    """Requests in flight on one page, and how many the browser refused for the capture's own rules:
    the ad/tracker lists (setBlockedURLs) and block_resources/block_requests (request_blocking.py)."""

    def __init__(self, page: PageDriver) -> None:
        self.inflight: set[str] = set()
        self.blocked = 0
        self.changed = asyncio.get_running_loop().time()
        # frame id -> URL whose document response was a download (navigation then fails with ERR_ABORTED).
        self.downloads: dict[str, str] = {}
        page.on("Network.requestWillBeSent", lambda e: self._update(e["requestId"], add=True))
        page.on("Network.loadingFinished", lambda e: self._update(e["requestId"], add=False))
        page.on("Network.loadingFailed", self._failed)
        page.on("Network.responseReceived", self._response)

    def _update(self, request_id: str, *, add: bool) -> None:
        (self.inflight.add if add else self.inflight.discard)(request_id)
        self.changed = asyncio.get_running_loop().time()

    def _failed(self, event: dict[str, Any]) -> None:
        if event.get("blockedReason") == "inspector":
            self.blocked += 1
        self._update(event["requestId"], add=False)

    def _response(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        headers = {k.lower(): str(v).lower() for k, v in (response.get("headers") or {}).items()}
        attachment = headers.get("content-disposition", "").startswith("attachment")
        if event.get("type") == "Document" and (attachment or response.get("mimeType") == "application/octet-stream"):
            self.downloads[event.get("frameId", "")] = response.get("url", "")

    async def settle(self, timeout: float, *, quiet: float = 0.3, allowed: int = 0) -> bool:
        """Wait until at most ``allowed`` requests are in flight for ``quiet`` s; False on timeout."""
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, timeout)
        while loop.time() < end:
            if len(self.inflight) <= allowed and loop.time() - self.changed >= quiet:
                return True
            await asyncio.sleep(0.05)
        return False
