"""One DevTools ``Fetch`` interception per page for everything that pauses requests.

``Fetch.enable`` replaces the patterns of an earlier call, and each paused request
must be answered exactly once: so the origin-scoped headers (scoped_headers.py) and
the caller's blocking rules (request_blocking.py) share one ``Fetch.enable`` with the
union of their patterns and one ``requestPaused`` handler.  A paused request that a
rule blocks fails; otherwise a request to the target's origin goes to the headers,
and anything else continues untouched at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import DriverError
from ..egress.urls import origin_of
from .request_blocking import RequestBlocker
from .scoped_headers import OriginHeaders, apply_headers

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

log = logging.getLogger("screenshot_service.capture")


async def intercept(session: CaptureSession, opts: CaptureOptions) -> None:
    """Before navigation: the caller's headers and blocking rules (nothing paused without either)."""
    page = session.page
    headers = await apply_headers(page, opts)
    blocker = RequestBlocker.of(page, opts)
    patterns = [*(blocker.patterns() if blocker else ()), *((headers.pattern,) if headers else ())]
    if blocker is not None and "websocket" in opts.block_resources:
        await blocker.refuse_websockets(session.network)
    if not patterns:  # websocket alone pauses nothing
        return
    page.on("Fetch.requestPaused", _Router(session, headers, blocker).on_paused)
    await page.send("Fetch.enable", {"patterns": patterns})


class _Router:
    def __init__(self, session: CaptureSession, headers: OriginHeaders | None, blocker: RequestBlocker | None) -> None:
        self.page, self.headers, self.blocker = session.page, headers, blocker
        self._pending: set[asyncio.Task[None]] = set()

    def on_paused(self, event: dict[str, Any]) -> None:
        if self.blocker is not None and self.blocker.blocks(event):
            self.blocker.fail(event)
        elif self.headers is not None and origin_of(str((event.get("request") or {}).get("url", ""))) == \
                self.headers.origin:
            self.headers.on_paused(event)
        else:
            task = asyncio.ensure_future(self._continue(event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _continue(self, event: dict[str, Any]) -> None:
        try:
            await self.page.send("Fetch.continueRequest", {"requestId": event.get("requestId")})
        except DriverError as exc:  # cancelled meanwhile, or the page is gone
            log.debug("continuing a paused request failed: %s", str(exc)[:200])
