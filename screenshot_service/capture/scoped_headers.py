"""Caller ``headers`` go to the target's origin only, unless ``headers_scope=all`` (SPEC §3).

``Network.setExtraHTTPHeaders`` adds headers to every request of the page, so an
``Authorization`` meant for the target reached each third-party image, script and
iframe host too.  With the default scope (``origin``) only requests to the target's
origin are paused (DevTools ``Fetch``, a URL pattern of that origin alone, so
nothing else waits on a round trip) and continued with the headers added when the
target asked for them, that is when either

- the request is the page's top-level navigation (the main frame's document), or
- the frame that made it holds a document of the target's origin (frame_origins.py):
  the main document's own requests, a same-origin iframe's, an about:blank or srcdoc
  child's (they inherit their creator's origin), a dedicated worker's (DevTools names
  the frame that started it).  DevTools does not say which frame started a frame's
  navigation, only which frame navigates: it gets the headers when that frame and
  every frame above and below it are of the target's origin, since then no frame of
  another origin may have started it (frame_origins.navigated_only_by).

So a cross-origin iframe on the target's page gets nothing, whether it fetches the
target's origin, loads an image or a worker from it, or navigates itself there; nor
does a sandboxed frame (its origin is opaque), nor a request DevTools names no known
frame for.  Chromium may pause a document's first requests before the renderer's
events about that document arrive, so every request but the top-level navigation
is judged after one round trip to the renderer (shared by the requests paused
together), whose answer comes after those events.

The target's origin is scheme, host and port of the URL the caller gave (after
the service's canonical spelling).  It stays that origin whatever the main
document does: after a same-origin redirect the document still gets the headers;
after a cross-origin redirect the page it lands on does not, since it is not the
origin the caller gave them for.  Each redirect hop is decided on its own.

Service workers run beyond this page's DevTools session, and so never get them.
The cost (the interception, one renderer round trip per burst of paused requests) is paid
only when the caller gave headers, and only by requests to the target's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import DriverError
from ..egress.urls import origin_of
from .frame_origins import FrameOrigins

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions

log = logging.getLogger("screenshot_service.capture")

CATCH_UP_BOUND = 3.0  # seconds a paused request waits for the renderer's events before it is judged


async def apply_headers(page: PageDriver, opts: CaptureOptions) -> OriginHeaders | None:
    """Before navigation: send ``opts.headers`` as ``opts.headers_scope`` says.  With the origin
    scope, the handler of the requests to pause (interception.py enables Fetch with its pattern)."""
    if not opts.headers:
        return None
    if opts.headers_scope == "all":
        await page.send("Network.setExtraHTTPHeaders", {"headers": opts.header_dict})
        return None
    origin = origin_of(opts.url or "")
    if origin is None:  # html has no target origin (options.py refuses headers there without scope all)
        return None
    return OriginHeaders(page, origin, opts.headers)


class OriginHeaders:
    """Continues each paused request, with the caller's headers when the target's origin asked for it."""

    def __init__(self, page: PageDriver, origin: str, headers: tuple[tuple[str, str], ...]) -> None:
        self.page, self.origin, self.headers = page, origin, headers
        self._names = {name.lower() for name, _ in headers}
        self._pending: set[asyncio.Task[None]] = set()  # answers in flight, kept from the collector
        self._main_frame = page.main_frame_id
        self._frames = FrameOrigins(page)
        self._round_trip: asyncio.Future[None] | None = None
        # "*" and "?" are the pattern's only wildcards, and no origin holds one; the "/" ends the authority.
        self.pattern = {"urlPattern": origin + "/*", "requestStage": "Request"}

    def _for_target(self, event: dict[str, Any]) -> bool:
        if origin_of(str((event.get("request") or {}).get("url", ""))) != self.origin:
            return False  # the pattern said so; checked anyway
        if self._top_level(event):
            return True  # whoever started it
        frame = str(event.get("frameId") or "")
        if event.get("resourceType") == "Document":  # a frame's navigation: DevTools does not say whose
            return self._frames.navigated_only_by(frame, self.origin)
        return self._frames.origin(frame) == self.origin

    def _top_level(self, event: dict[str, Any]) -> bool:
        return event.get("frameId") == self._main_frame and event.get("resourceType") == "Document"

    def on_paused(self, event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._answer(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, event: dict[str, Any]) -> None:
        if not self._top_level(event):
            # A document's requests can reach the browser before the renderer's word of the
            # document (its frame, its origin) reaches us: judge them on what it said until now.
            # The top-level navigation is judged at once: the renderer may not answer meanwhile.
            await self._renderer_caught_up()
        params: dict[str, Any] = {"requestId": event.get("requestId")}
        if self._for_target(event):
            request = event.get("request") or {}
            kept = [(k, str(v)) for k, v in (request.get("headers") or {}).items() if k.lower() not in self._names]
            params["headers"] = [{"name": k, "value": v} for k, v in (*kept, *self.headers)]
        await self._continue(params)

    def _renderer_caught_up(self) -> asyncio.Future[None]:
        """Done once every event the renderer sent before this call has been dispatched: one round
        trip to it (its answer follows them), shared by the requests paused meanwhile."""
        if self._round_trip is None:
            self._round_trip = asyncio.ensure_future(self._ask_renderer())
        return asyncio.shield(self._round_trip)

    async def _ask_renderer(self) -> None:
        await asyncio.sleep(0)  # the requests paused in this burst share the round trip
        self._round_trip = None  # a request paused from now on waits for the next one
        # A renderer busy in a synchronous XHR answers nothing: judge on what is known by then.
        with contextlib.suppress(DriverError, TimeoutError):
            async with asyncio.timeout(CATCH_UP_BOUND):
                await self.page.send("Runtime.getIsolateId")  # answered by the renderer, changes nothing

    async def _continue(self, params: dict[str, Any]) -> None:
        try:
            await self.page.send("Fetch.continueRequest", params)
        except DriverError as exc:  # the request was cancelled meanwhile, or the page is gone
            if "headers" in params and "Invalid InterceptionId" not in str(exc):
                log.warning("adding the caller's headers failed: %s", str(exc)[:200])
                with contextlib.suppress(DriverError):  # never leave the request paused
                    await self.page.send("Fetch.continueRequest", {"requestId": params["requestId"]})
