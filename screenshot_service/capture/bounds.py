"""How big one capture's image may be: one pixel budget, and Chromium's texture limit.

Sizes are device pixels: CSS px times ``device_scale_factor`` on each side, so
the budget covers what Chromium really rasterises.  The one budget applies to
every captured area: the viewport and a clip (checked with the options, before
anything runs), an element (checked once its box is measured, before the shot)
and a full page (cut at the budget, like at ``max_height``: ``clamped``).

No single ``Page.captureScreenshot`` is larger than ``TEXTURE_LIMIT`` on a side
(beyond it Chromium's compositor fails, and on GPU builds the GPU process
crashes, taking every tenant's capture with it) nor than ``SHOT_PIXELS``: a
taller or larger PNG is captured in strips and stitched (fullpage.py), so the
browser never holds more than one strip's bitmap per capture.  JPEG and WebP
cannot be stitched cheaply, so their area must fit one shot.
"""

from __future__ import annotations

import math

from ..errors import InvalidParameter

# Device px in one image at most (~640 MB as raw RGBA). Chromium peaks at about 20 bytes
# per pixel of one shot (GPU process, browser and renderer together), hence the strips.
MAX_PIXELS = 160_000_000
TEXTURE_LIMIT = 16384  # device px a side: Chromium's max texture size on most builds
WEBP_LIMIT = 16383  # the WebP format's own maximum dimension
SHOT_PIXELS = 8192 * 2560  # device px per screenshot call at most (a strip); larger PNGs are stitched


def device_px(css: float, scale: float) -> int:
    return math.ceil(css * scale)


def area_problem(width: float, height: float, scale: float, fmt: str) -> str | None:
    """Why an area of ``width`` x ``height`` CSS px at ``scale`` cannot be one ``fmt`` image (None: it can)."""
    w, h = device_px(width, scale), device_px(height, scale)
    side = WEBP_LIMIT if fmt == "webp" else TEXTURE_LIMIT
    why = []
    if w > side:
        why.append(f"wider than {side} device px")
    if h > side and fmt != "png":  # a taller PNG is captured in strips
        why.append(f"taller than {side} device px (only png is captured in strips)")
    if w * h > MAX_PIXELS:
        why.append(f"over the budget of {MAX_PIXELS} px")
    if not why:
        return None
    return (f"{w}x{h} device px ({w * h} px: {width:g}x{height:g} CSS px at device_scale_factor {scale:g}) "
            f"is {' and '.join(why)}")


def check_area(field: str, width: float, height: float, scale: float, fmt: str) -> None:
    """A 400 naming ``field`` when the area cannot be captured within the bounds."""
    problem = area_problem(width, height, scale, fmt)
    if problem is not None:
        raise InvalidParameter.fields({field: problem})


def full_page_rows(width: int, scale: float, fmt: str, max_height: int, shrink: float = 1.0) -> int:
    """CSS px of page height a full page may have: ``max_height``, the budget and, for JPEG/WebP, one shot.

    ``shrink``: image rows per device row (a thumbnail's scale; 0 when the image's height is bounded
    anyway): the one shot is the image the renderer draws, so a thumbnail's page may be taller.
    """
    rows = min(max_height, math.floor(MAX_PIXELS // device_px(width, scale) / scale))
    if fmt != "png" and shrink > 0:
        rows = min(rows, math.floor((WEBP_LIMIT if fmt == "webp" else TEXTURE_LIMIT) / (scale * shrink)))
    return max(1, rows)
