"""The checks behind a result's ``warnings`` (and ``fail_on_http_error``), at each step of a capture.

* after navigation: the main document's status (``http_status``);
* ``wait_until=ready``: the bounded wait of ready.py (``ready_timeout``);
* just before the shot: fonts, images and the title (``before_capture``);
* after the shot: one flat colour, or cut (``after_capture``).

A check that cannot run (the page replaced its document under us) gives no
verdict: warnings never fail a capture.  Only ``fail_on_http_error`` does, on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from typing import TYPE_CHECKING

from ..browser.driver_errors import ProtocolError, ScriptError
from ..egress.urls import host_of
from ..errors import TargetHttpError
from . import blank, facts, readback, ready

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions
    from .session import CaptureSession

log = logging.getLogger("screenshot_service.capture")

TITLE_CHARS = 1024  # of the document's title in the result's page facts
PROBE_PIXELS = 65_536  # a JPEG/WebP is judged blank from a PNG of the same area this small (~320 x 200)


def http_status(session: CaptureSession, opts: CaptureOptions) -> None:
    """Right after each main document loaded (the URL's, or one the page navigated to): one >= 400
    fails with ``fail_on_http_error`` (502, raised inside the pipeline's admitted block, so the
    credit is refunded), else it is a warning, about the document captured only."""
    watch = session.document
    watch.unwarn("http_error")  # said of a document the page has since left
    status = watch.status_code
    if status is None or status < 400 or watch.egress is not None:
        return  # the proxy's own error page is blocked_target or target_unreachable (navigation_watch.py)
    host = host_of(watch.final_url or opts.url) or "the target"
    if opts.fail_on_http_error:
        raise TargetHttpError(f"{host} answered HTTP {status}", details={"status": status})
    watch.warn("http_error", f"the page answered HTTP {status}: this may be an error page", {"status": status})


async def wait_ready(session: CaptureSession, deadline: float | None) -> None:
    loop = asyncio.get_running_loop()
    began, end = loop.time(), ready.budget_end(deadline)
    unmet = await ready.wait_ready(session.page, session.network, end)
    if unmet:
        waited = round(loop.time() - began, 1)
        session.document.warn("ready_timeout", f"captured after {waited:g} s without the page being ready: "
                              f"{', '.join(unmet)} not settled", {"unmet": unmet, "waited_s": waited})


# What the captured document is, and what may be wrong with it, read just before the shot.
_BEFORE_JS = """(wholePage) => {
  let broken = 0;
  for (const img of document.images) {
    if (!(img.currentSrc || img.getAttribute('src'))) continue;
    if (img.complete) { if (img.naturalWidth === 0) broken++; continue; }
    const r = img.getBoundingClientRect();
    const visible = wholePage || (r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth);
    if (img.loading !== 'lazy' || visible) broken++;  // still loading: undecoded in the image
  }
  return {title: document.title || '', fonts: document.fonts ? document.fonts.status : 'loaded', broken};
}"""


async def before_capture(session: CaptureSession, opts: CaptureOptions) -> facts.PageFacts:
    """Fonts still loading, images broken or pending; the page's facts with its title."""
    watch = session.document
    try:
        state = readback.record(await session.page.evaluate(_BEFORE_JS, opts.full_page or opts.format == "pdf"),
                                ("title", "fonts", "broken"))
        title = readback.text(state["title"], limit=TITLE_CHARS, what="title")
        fonts = readback.text(state["fonts"], limit=16, what="fonts")
        count = readback.integer(state["broken"], low=0, high=2**31, what="broken")
    except (ProtocolError, ScriptError) as exc:
        log.warning("page checks skipped: %s", readback.first_line(exc))
        return watch.facts("", html=opts.html is not None)
    if fonts == "loading":
        watch.warn("fonts_not_loaded", "web fonts were still loading: text may show in a fallback font")
    if count:
        watch.warn("images_broken", f"{count} image(s) failed to load or were not decoded", {"count": count})
    return watch.facts(title, html=opts.html is not None)


async def after_capture(session: CaptureSession, opts: CaptureOptions, data: bytes,
                        area: tuple[float, float, float, float] | None, *, clamped: bool, height: int) -> None:
    """``area``: the captured rectangle in CSS px of the page (None: the viewport)."""
    watch = session.document
    try:
        flat = await _is_flat(session.page, opts, data, area)
    except (ProtocolError, ScriptError) as exc:
        log.warning("blank check skipped: %s", readback.first_line(exc))
        flat = False
    if flat:
        watch.warn("blank_capture", "the image is one flat colour: the page may not have rendered")
    if clamped:
        watch.warn("clamped", f"the page was cut at {height} px (max_height, the pixel budget or the format's limit)",
                   {"height": height})


async def _is_flat(page: PageDriver, opts: CaptureOptions, data: bytes,
                   area: tuple[float, float, float, float] | None) -> bool:
    if opts.format == "png":
        return bool(await asyncio.to_thread(blank.png_is_flat, data))
    if area is None:  # the viewport, wherever the page is scrolled
        view = (await page.send("Page.getLayoutMetrics")).get("cssVisualViewport") or {}
        area = (int(view.get("pageX", 0)), int(view.get("pageY", 0)), opts.width, opts.height)
    x, y, width, height = area
    scale = min(1.0, math.sqrt(PROBE_PIXELS / max(1, width * height)))
    probe = await page.send("Page.captureScreenshot", {
        "format": "png", "fromSurface": True, "captureBeyondViewport": True,
        "clip": {"x": x, "y": y, "width": width, "height": height, "scale": scale}})
    return bool(await asyncio.to_thread(blank.png_is_flat, base64.b64decode(probe["data"])))
