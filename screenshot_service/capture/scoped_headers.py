"""Caller ``headers`` go to the target's origin only, unless ``headers_scope=all`` (SPEC §3).

``Network.setExtraHTTPHeaders`` adds headers to every request of the page, so an
``Authorization`` meant for the target reached each third-party image, script and
iframe host too.  With the default scope (``origin``) only requests to the target's
origin are paused (DevTools ``Fetch``, a URL pattern of that origin alone, so
nothing else waits on a round trip) and continued with the headers added.

The target's origin is scheme, host and port of the URL the caller gave (after
the service's canonical spelling).  It stays that origin whatever the main
document does: after a same-origin redirect the document still gets the headers;
after a cross-origin redirect the page it lands on does not, since it is not the
origin the caller gave them for.  Each redirect hop is decided on its own.

Beyond this page's DevTools session, and so never given the headers: requests
of cross-origin iframes that run in their own process, and of service workers.
Only the interception's cost is paid, and only when the caller gave headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..browser.driver_errors import DriverError

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions

log = logging.getLogger("screenshot_service.capture")

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` as Chromium writes it (default port left out), or None (not http/https)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


async def apply_headers(page: PageDriver, opts: CaptureOptions) -> None:
    """Before navigation: send ``opts.headers`` as ``opts.headers_scope`` says."""
    if not opts.headers:
        return
    if opts.headers_scope == "all":
        await page.send("Network.setExtraHTTPHeaders", {"headers": opts.header_dict})
        return
    origin = origin_of(opts.url or "")
    if origin is None:  # html has no target origin (options.py refuses headers there without scope all)
        return
    _OriginHeaders(page, origin, opts.headers)
    # "*" and "?" are the pattern's only wildcards, and no origin holds one; the "/" ends the authority.
    await page.send("Fetch.enable", {"patterns": [{"urlPattern": origin + "/*", "requestStage": "Request"}]})


class _OriginHeaders:
    """Continues each paused request, with the caller's headers when it goes to ``origin``."""

    def __init__(self, page: PageDriver, origin: str, headers: tuple[tuple[str, str], ...]) -> None:
        self.page, self.origin, self.headers = page, origin, headers
        self._names = {name.lower() for name, _ in headers}
        self._pending: set[asyncio.Task[None]] = set()  # answers in flight, kept from the collector
        page.on("Fetch.requestPaused", self._on_paused)

    def _on_paused(self, event: dict[str, Any]) -> None:
        request = event.get("request") or {}
        params: dict[str, Any] = {"requestId": event.get("requestId")}
        if origin_of(str(request.get("url", ""))) == self.origin:  # the pattern said so; checked anyway
            kept = [(k, str(v)) for k, v in (request.get("headers") or {}).items() if k.lower() not in self._names]
            params["headers"] = [{"name": k, "value": v} for k, v in (*kept, *self.headers)]
        task = asyncio.ensure_future(self._continue(params))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _continue(self, params: dict[str, Any]) -> None:
        try:
            await self.page.send("Fetch.continueRequest", params)
        except DriverError as exc:  # the request was cancelled meanwhile, or the page is gone
            if "headers" in params and "Invalid InterceptionId" not in str(exc):
                log.warning("adding the caller's headers failed: %s", str(exc)[:200])
                with contextlib.suppress(DriverError):  # never leave the request paused
                    await self.page.send("Fetch.continueRequest", {"requestId": params["requestId"]})
