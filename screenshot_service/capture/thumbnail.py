"""Thumbnails: the capture the options describe, scaled down to ``thumb_width`` / ``thumb_height``.

Nothing is resized after the fact: ``Page.captureScreenshot``'s ``clip.scale``
makes the renderer rasterise the area at the thumbnail's size, so a thumbnail
costs no more than the plain capture (less, for a tall page) and needs no
imaging library.  Chromium's image is ``round(clip size x scale x device
scale factor)`` on each side, so the clip is set to exactly the thumbnail's
pixels divided by that product, and the image comes out at exactly the size
computed here.

The box: one side alone keeps the aspect ratio; both with ``contain`` fit
inside it, with ``cover`` fill it, the overflow cropped around the centre
(in whole output pixels, so the crop is sharp).  A thumbnail never enlarges:
an image already inside the box is the plain capture (``cover`` still crops
the side that overflows the box).  The area is what the plain capture would
take (viewport, element, clip or full page, with the same bounds and
``max_height``), so a thumbnail is always the plain capture, smaller.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import fullpage

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions

Area = tuple[float, float, float, float]  # x, y, width, height in CSS px of the page


@dataclass(frozen=True)
class Fit:
    """What to capture for a thumbnail: ``area`` at ``scale``, giving ``width`` x ``height`` pixels."""

    area: Area
    scale: float  # clip.scale: image pixels per device pixel of the plain capture
    width: int
    height: int


def requested(opts: CaptureOptions) -> bool:
    return opts.thumb_width is not None or opts.thumb_height is not None


def fit(opts: CaptureOptions, area: Area) -> Fit | None:
    """The thumbnail of ``area``; None when the plain capture already is one (nothing to scale or crop)."""
    box_w, box_h = opts.thumb_width, opts.thumb_height
    if box_w is None and box_h is None:
        return None
    x, y, width, height = area
    dpr = opts.device_scale_factor
    plain_w, plain_h = width * dpr, height * dpr  # the plain capture's pixels
    factors = [box / plain for box, plain in ((box_w, plain_w), (box_h, plain_h)) if box is not None]
    cover = opts.thumb_fit == "cover" and len(factors) == 2
    scale = min(1.0, max(factors) if cover else min(factors))
    out_w, out_h = max(1, _rounded(plain_w * scale)), max(1, _rounded(plain_h * scale))
    if cover:
        out_w, out_h = min(out_w, box_w or out_w), min(out_h, box_h or out_h)
    if scale == 1.0 and (out_w, out_h) == (_rounded(plain_w), _rounded(plain_h)):
        return None
    per_css = scale * dpr  # image pixels per CSS px
    # Centre the crop on whole image pixels: a half-pixel offset would resample every pixel.
    left = _rounded((plain_w * scale - out_w) / 2) / per_css
    top = _rounded((plain_h * scale - out_h) / 2) / per_css
    return Fit((x + max(0.0, left), y + max(0.0, top), out_w / per_css, out_h / per_css), scale, out_w, out_h)


def _rounded(value: float) -> int:
    return math.floor(value + 0.5)  # as Chromium rounds image sizes (half away from zero)


async def viewport_area(page: PageDriver, opts: CaptureOptions) -> tuple[int, int, int, int]:
    """The viewport where the page is scrolled, in CSS px of the page (what a plain capture shows)."""
    view = (await page.send("Page.getLayoutMetrics")).get("cssVisualViewport") or {}
    return round(view.get("pageX", 0)), round(view.get("pageY", 0)), opts.width, opts.height


def row_shrink(opts: CaptureOptions) -> float:
    """Image rows per device row of a full page's thumbnail, at most (bounds.full_page_rows): 0 when
    the image's height is bounded by the box whatever the page's (a thumb_height, or cover)."""
    if not requested(opts):
        return 1.0
    if opts.thumb_height is not None:
        return 0.0
    assert opts.thumb_width is not None
    return min(1.0, opts.thumb_width / (opts.width * opts.device_scale_factor))


async def capture_full_page(page: PageDriver, opts: CaptureOptions) -> fullpage.Shot:
    """The whole page (fullpage.full_page_area), as a thumbnail when asked for."""
    area, cut = await fullpage.full_page_area(page, opts, row_shrink(opts))
    shot = await capture_area(page, opts, area)
    return fullpage.Shot(shot.data, clamped=shot.clamped or cut, area=shot.area)


async def capture_area(page: PageDriver, opts: CaptureOptions, area: tuple[int, int, int, int]) -> fullpage.Shot:
    """``area`` (as fullpage.capture_area), as a thumbnail when asked for.

    A thumbnail too large for one shot (a very tall full page, width only) is
    captured in strips of whole image rows and stitched like a full page.
    """
    thumb = fit(opts, area)
    if thumb is None:
        return await fullpage.capture_area(page, opts, area)
    rows = min(fullpage.TILE_ROWS, fullpage.TILE_PIXELS // thumb.width)
    if opts.format != "png" or (thumb.height <= fullpage.SINGLE_LIMIT and thumb.height <= rows):
        return fullpage.Shot(await fullpage.shot(page, opts, thumb.area, thumb.scale), False, thumb.area)
    x, y, width, _ = thumb.area
    per_css = thumb.scale * opts.device_scale_factor
    strips = [await fullpage.shot(page, opts, (x, y + top / per_css, width, min(rows, thumb.height - top) / per_css),
                                  thumb.scale) for top in range(0, thumb.height, rows)]
    try:
        data = await asyncio.to_thread(fullpage.stitch_png, strips)
    except ValueError:  # as fullpage.capture_area: strips that cannot be stitched give one clamped shot
        top = (x, y, width, rows / per_css)
        return fullpage.Shot(await fullpage.shot(page, opts, top, thumb.scale), True, top)
    return fullpage.Shot(data, False, thumb.area)
