"""Full-page captures that show everything: reveal lazy content, then capture, in tiles if tall.

Reveal: lazy content only loads when it comes near the viewport, so before a
full-page shot the page is scrolled through in viewport steps (native
``loading=lazy`` is switched to eager first), then we wait — within a time
budget — for images, fonts and the network to settle, and scroll back to the top.

Capture (a full page, a clip or an element alike, ``capture_area``): an area
within one shot's bounds (bounds.py: the texture limit tall, ``SHOT_PIXELS``
in all) is one ``Page.captureScreenshot`` with ``captureBeyondViewport``.  A
larger PNG is captured in strips (clip + captureBeyondViewport, so the layout
viewport never changes: ``position:fixed`` headers are painted once, at the
top, exactly as in a single shot) and the strips are stitched losslessly
without decoding pixels (``stitch_png``).  JPEG and WebP have no cheap lossless
stitch (and WebP cannot exceed 16383 px): a full page is clamped at the
single-shot limit and reported as clamped; a clip or element must fit
(bounds.area_problem).
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from . import bounds

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .network import NetworkTracker
    from .options import CaptureOptions

SINGLE_LIMIT = bounds.TEXTURE_LIMIT  # device px: one shot is never taller (nor wider)
TILE_ROWS = 8192  # device px per strip at most ...
TILE_PIXELS = bounds.SHOT_PIXELS  # ... and at most this many pixels, so wide areas take shorter strips
REVEAL_MAX = 10.0  # seconds: scrolling and settling never take longer than this
STEP_GRACE = 0.5  # seconds a reveal script may overrun its own budget before it is given up
ZLIB_LEVEL = 1  # stitching recompresses everything; speed over a ~20 % smaller file


@dataclass(frozen=True)
class Shot:
    data: bytes
    clamped: bool
    area: tuple[float, float, float, float]  # what was captured, in CSS px of the page


# -- reveal -------------------------------------------------------------------------------

_SCROLL_JS = """async (budgetMs, maxHeight) => {
  const end = performance.now() + budgetMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  // rAF may never fire in an odd page state; never wait on it for more than 100 ms.
  const frame = () => Promise.race([new Promise(r => requestAnimationFrame(() => r())), sleep(100)]);
  for (const el of document.querySelectorAll('img[loading="lazy"], iframe[loading="lazy"]')) el.loading = 'eager';
  const root = document.scrollingElement || document.documentElement;
  if (!root) return 0;  // a page may remove its own root element
  const step = Math.max(100, Math.floor(window.innerHeight * 0.8));
  let y = 0;
  while (performance.now() < end) {
    const bottom = Math.min(root.scrollHeight, maxHeight) - window.innerHeight;
    if (y >= bottom) break;
    y = Math.min(y + step, bottom);
    window.scrollTo(0, y);
    await frame(); await frame();  // observers run after the frame that moved the content
  }
  return y;
}"""

_IMAGES_JS = """async (budgetMs) => {
  const end = performance.now() + budgetMs;
  const pending = () => [...document.images].filter(i => !i.complete && (i.currentSrc || i.src)).length;
  while (pending() && performance.now() < end) await new Promise(r => setTimeout(r, 50));
  if (document.fonts) {
    await Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, Math.max(0, end - performance.now())))]);
  }
  return pending();
}"""

_TOP_JS = """async () => {
  window.scrollTo(0, 0);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}"""


async def reveal(page: PageDriver, network: NetworkTracker, opts: CaptureOptions, budget: float) -> None:
    """Scroll through the page, let lazy content load and ``network`` settle, return to the top."""
    loop = asyncio.get_running_loop()
    budget = max(0.5, min(budget, REVEAL_MAX))
    end = loop.time() + budget
    # Each step bounded here too (``within``): a page can cancel the timers the scripts wait on.
    await page.evaluate(_SCROLL_JS, int(budget * 500), opts.max_height, within=budget * 0.5 + STEP_GRACE)
    images = max(0.1, end - loop.time()) * 0.8
    await page.evaluate(_IMAGES_JS, int(images * 1000), within=images + STEP_GRACE)
    await network.settle(min(2.0, end - loop.time()), allowed=0)
    await page.evaluate(_TOP_JS, within=STEP_GRACE)
    # On a busy machine the scroll can outrun the page's observers; back at the top they fire
    # for the first screen: wait for what they start (nothing pending: returns at once).
    images = max(0.1, min(1.0, end - loop.time()))
    await page.evaluate(_IMAGES_JS, int(images * 1000), within=images + STEP_GRACE)


# -- capture ------------------------------------------------------------------------------


async def full_page_area(page: PageDriver, opts: CaptureOptions,
                         shrink: float = 1.0) -> tuple[tuple[int, int, int, int], bool]:
    """The page's whole area, cut at ``max_height`` and the bounds (``shrink``: see bounds.full_page_rows);
    True if it was cut."""
    metrics = await page.send("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    full = max(1, math.ceil(size["height"]))
    rows = bounds.full_page_rows(opts.width, opts.device_scale_factor, opts.format, opts.max_height, shrink)
    height = min(full, rows)
    return (0, 0, opts.width, height), full > height


async def capture_area(page: PageDriver, opts: CaptureOptions, area: tuple[int, int, int, int]) -> Shot:
    """The rectangle ``area`` (CSS px of the page: x, y, width, height) at the page's scale.

    One shot when it fits one (and always for JPEG/WebP: the caller keeps those within
    the single-shot limits), else PNG strips stitched.  ``clamped``: only when strips
    could not be stitched and one shot of the top had to do.
    """
    x, y, width, height = area
    scale = opts.device_scale_factor
    one_shot = (bounds.device_px(height, scale) <= SINGLE_LIMIT
                and bounds.device_px(width, scale) * bounds.device_px(height, scale) <= TILE_PIXELS)
    if one_shot or opts.format != "png":
        return Shot(await shot(page, opts, area), clamped=False, area=area)
    rows = _tile_css_rows(width, scale)
    tiles = [await shot(page, opts, (x, y + top, width, min(rows, height - top))) for top in range(0, height, rows)]
    try:
        data = await asyncio.to_thread(stitch_png, tiles)  # zlib releases the GIL: the loop keeps serving
    except ValueError:
        # Strips Chromium encoded differently (never seen, but cheap to survive): one clamped shot.
        cut = min(height, math.floor(SINGLE_LIMIT / scale), math.floor(TILE_PIXELS / bounds.device_px(width, scale) / scale))
        top = (x, y, width, max(1, cut))
        return Shot(await shot(page, opts, top), clamped=True, area=top)
    return Shot(data, clamped=False, area=area)


def _tile_css_rows(width: int, scale: float) -> int:
    """CSS px per strip: within the strip limits and a whole number of device px, so strips abut exactly."""
    device_rows = min(TILE_ROWS, TILE_PIXELS // max(1, math.ceil(width * scale)))
    ratio = Fraction(scale).limit_denominator(1000)
    step = ratio.denominator  # e.g. 2.625 = 21/8: multiples of 8 CSS px are whole device px
    return max(step, math.floor(device_rows / scale / step) * step)


def shot_params(opts: CaptureOptions) -> dict[str, Any]:
    """Page.captureScreenshot's encoding for every capture of ``opts``.

    ``optimizeForSpeed``: Chromium's fast encoder settings (zlib's fastest level
    for PNG). The pixels are the same; the file is larger (about 3x on a flat
    page, much less on a photographic one) and encoding costs about 15 ms less
    of the browser's CPU per 1280x800 capture, which is most of what separates
    the service from a bare DevTools loop (README, Performance).
    """
    params: dict[str, Any] = {"format": opts.format, "fromSurface": True, "optimizeForSpeed": True}
    if opts.format in ("jpeg", "webp"):
        params["quality"] = opts.quality
    return params


async def shot(page: PageDriver, opts: CaptureOptions, area: tuple[float, float, float, float],
               scale: float = 1.0) -> bytes:
    """One screenshot of ``area`` (CSS px of the page); ``scale`` < 1 rasterises it smaller (thumbnail.py)."""
    x, y, width, height = area
    params = {
        **shot_params(opts),
        "captureBeyondViewport": True,  # the area may lie outside the viewport
        "clip": {"x": x, "y": y, "width": width, "height": height, "scale": scale},
    }
    result = await page.send("Page.captureScreenshot", params)
    return base64.b64decode(result["data"])


# -- PNG ----------------------------------------------------------------------------------

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def stitch_png(tiles: list[bytes]) -> bytes:
    """Stack PNG strips of equal width into one PNG without decoding the pixels.

    A PNG row is a filter byte plus filtered bytes, where filters Up, Average and
    Paeth refer to the row above.  Each strip's first row was filtered against
    an all-zero row; below another strip that no longer holds, so that one row
    is rewritten into a filter with no upward reference.  Every other byte is
    passed through: only zlib touches the bulk, in C.
    """
    first: bytes | None = None
    total = 0
    compressor = zlib.compressobj(ZLIB_LEVEL)
    parts: list[bytes] = []
    ancillary: list[bytes] = []
    for index, tile in enumerate(tiles):
        chunks = list(_chunks(tile))
        header = next(body for kind, body in chunks if kind == b"IHDR")
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
        if first is None:
            first = header
            ancillary = [_chunk(k, b) for k, b in chunks if k not in (b"IHDR", b"IDAT", b"IEND")]
        if header[:4] != first[:4] or header[8:] != first[8:] or depth != 8 or colour not in (2, 6) or interlace:
            raise ValueError(f"strip {index} is not an 8-bit RGB(A) PNG like the first")
        bpp = 3 if colour == 2 else 4
        stride = width * bpp + 1
        inflater = zlib.decompressobj()
        idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
        row = inflater.decompress(idat, stride)
        parts.append(compressor.compress(_standalone_row(row, bpp)))
        while inflater.unconsumed_tail:
            parts.append(compressor.compress(inflater.decompress(inflater.unconsumed_tail, 1 << 22)))
        parts.append(compressor.compress(inflater.flush()))
        total += height
    if first is None:
        raise ValueError("no strips")
    compressed = b"".join(parts) + compressor.flush()
    out = [_SIGNATURE, _chunk(b"IHDR", first[:4] + struct.pack(">I", total) + first[8:]), *ancillary]
    out.extend(_chunk(b"IDAT", compressed[i : i + (1 << 20)]) for i in range(0, len(compressed), 1 << 20))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _standalone_row(row: bytes, bpp: int) -> bytes:
    """The first row of a strip, re-filtered so it does not depend on the row above."""
    kind, body = row[0], bytearray(row[1:])
    if kind in (0, 1):  # None, Sub: no upward reference
        return row
    if kind == 2:  # Up against zeros is None
        return b"\x00" + bytes(body)
    if kind == 4:  # Paeth against zeros always predicts the left byte: Sub
        return b"\x01" + bytes(body)
    for i in range(bpp, len(body)):  # Average against zeros: decode this one row, store it unfiltered
        body[i] = (body[i] + (body[i - bpp] >> 1)) & 0xFF
    return b"\x00" + bytes(body)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG, JPEG or WebP header; (0, 0) if it cannot tell."""
    if data.startswith(_SIGNATURE):
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 < len(data):
            marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            pos += 2 + length
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return 0, 0
