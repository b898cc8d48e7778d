"""The pixel comparison behind ``compare_to`` (SPEC §3.3): which pixels changed, where, and an
image that shows them.  Pure and blocking (numpy and Pillow): callers run it in a thread.

Two pixels are equal when pixelmatch would call them equal without its anti-aliasing pass:
the YIQ distance of the two colours, each alpha-blended on white, is at most
``35215 * threshold²`` (35215: pixelmatch's largest possible distance).  Anti-aliased pixels are
not told apart: with ``disable_animations`` and ``wait_until=ready`` the same page renders the
same pixels, so a changed edge is a change.  Images of different sizes are compared on their
common top-left area.  Exact equality is checked byte by byte first, so the
floating-point distance is computed only where something differs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from . import png_rows
from .diff_options import MAX_REGIONS

MAX_DELTA = 35215.0
SLICE_BYTES = 1 << 20  # pixel bytes compared at a time: temporaries that stay in the CPU's cache
# Changed pixels are grouped on a grid of cells this many pixels wide (at least); a grid too
# fine for MAX_REGIONS components is coarsened by 2 until they fit.
CELL = 16
# The marked image: the new image in grey, faded towards white, and the changed pixels red.
FADE = 0.25  # how much of the grey's distance from white is kept
RED = (255, 0, 0)
Pixels = NDArray[np.uint8]  # height x width x 3 (RGB) or 4 (RGBA)
NOTHING: NDArray[np.bool_] = np.zeros((0, 0), bool)  # a mask that marks no pixel


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Comparison:
    changed_pixels: int
    compared_pixels: int  # the common area: the denominator of changed_ratio
    size_changed: bool
    regions: tuple[Box, ...] = ()
    mask: NDArray[np.bool_] = field(repr=False, default_factory=lambda: NOTHING)

    @property
    def changed_ratio(self) -> float:
        return self.changed_pixels / self.compared_pixels if self.compared_pixels else 0.0


def decode(data: bytes) -> Pixels:
    """Any image Chromium made (png, jpeg, webp): RGB pixels, or RGBA when it has transparency
    (converting an opaque page to RGBA would cost a third of the decode again).  Chromium's
    PNGs take png_rows' faster path; Pillow decodes the rest."""
    fast = png_rows.decode(data)
    if fast is not None:
        return fast
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", image.size)  # JPEG: no scaling, just the decoder's fastest path
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        wanted = "RGBA" if has_alpha else "RGB"
        return np.asarray(image if image.mode == wanted else image.convert(wanted))


def _rgba(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """N x 3 or N x 4 rows as N x 4 (opaque when there was no alpha)."""
    if pixels.shape[-1] == 4:
        return pixels
    opaque = np.full((*pixels.shape[:-1], 1), 255, np.uint8)
    return np.concatenate([pixels, opaque], axis=-1)


def _blend_on_white(pixels: NDArray[np.float32], alpha: NDArray[np.float32]) -> NDArray[np.floating[Any]]:
    blended: NDArray[np.floating[Any]] = 255.0 + (pixels - 255.0) * (alpha[:, None] / 255.0)
    return blended


_TO_YIQ = np.array([[0.29889531, 0.59597799, 0.21147017],
                    [0.58662247, -0.27417610, -0.52261711],
                    [0.11448223, -0.32180189, 0.31114694]], np.float32)  # columns: Y, I, Q
_YIQ_WEIGHTS = np.array([0.5053, 0.299, 0.1957], np.float32)


def yiq_delta(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.floating[Any]]:
    """pixelmatch's colorDelta (unsigned) of N x 4 RGBA (or N x 3 RGB) rows: 0 for equal, 32857
    for black vs white."""
    if a.shape[-1] == 3 and b.shape[-1] == 3:  # opaque: blending on white changes nothing
        diff = a.astype(np.float32) - b.astype(np.float32)
    else:
        a, b = _rgba(a), _rgba(b)
        diff = (_blend_on_white(a[:, :3].astype(np.float32), a[:, 3].astype(np.float32))
                - _blend_on_white(b[:, :3].astype(np.float32), b[:, 3].astype(np.float32)))
    yiq = diff @ _TO_YIQ
    result: NDArray[np.floating[Any]] = (yiq * yiq) @ _YIQ_WEIGHTS
    return result


def compare(old: Pixels, new: Pixels, threshold: float) -> Comparison:
    height, width = min(old.shape[0], new.shape[0]), min(old.shape[1], new.shape[1])
    size_changed = old.shape[:2] != new.shape[:2]
    a, b = old[:height, :width], new[:height, :width]
    if a.shape[2] != b.shape[2]:  # one has transparency: compare both as RGBA
        a, b = _rgba(a), _rgba(b)
    # Byte by byte first, a slice of rows at a time (no image-sized temporaries); only pixels
    # that differ at all are then judged by their colour distance.
    mask = png_rows.fresh((height, width)).view(bool)
    step = max(1, SLICE_BYTES // max(1, a.shape[1] * a.shape[2]))
    found_rows, found_cols = [], []
    for top in range(0, height, step):
        differs = a[top : top + step] != b[top : top + step]
        if differs.any():
            changed = differs[..., 0].copy()  # OR-ing the channels: much faster than any(axis=2)
            for channel in range(1, differs.shape[2]):
                changed |= differs[..., channel]
            mask[top : top + step] = changed
            r, c = np.nonzero(changed)
            found_rows.append(r + top)
            found_cols.append(c)
    rows = np.concatenate(found_rows) if found_rows else np.zeros(0, np.intp)
    cols = np.concatenate(found_cols) if found_cols else np.zeros(0, np.intp)
    if rows.size:
        near = yiq_delta(a[rows, cols], b[rows, cols]) <= MAX_DELTA * threshold * threshold
        mask[rows[near], cols[near]] = False
        rows, cols = rows[~near], cols[~near]
    regions = changed_regions(mask, rows, cols) if rows.size else ()
    return Comparison(int(rows.size), height * width, size_changed, regions, mask)


def changed_regions(mask: NDArray[np.bool_], rows: NDArray[np.intp], cols: NDArray[np.intp],
                    limit: int = MAX_REGIONS) -> tuple[Box, ...]:
    """At most ``limit`` boxes, each tight around a group of changed pixels (at ``rows``, ``cols``
    of ``mask``) whose cells touch on the grid."""
    cell = CELL
    while True:
        grid = np.zeros((-(-mask.shape[0] // cell), -(-mask.shape[1] // cell)), bool)
        grid[rows // cell, cols // cell] = True
        components = _components(grid)
        if len(components) <= limit:
            break
        cell *= 2
    boxes = []
    for top, left, bottom, right in components:
        y0, x0 = top * cell, left * cell
        window = mask[y0:(bottom + 1) * cell, x0:(right + 1) * cell]
        ys, xs = np.nonzero(window.any(axis=1))[0], np.nonzero(window.any(axis=0))[0]
        boxes.append(Box(x0 + int(xs[0]), y0 + int(ys[0]), int(xs[-1] - xs[0]) + 1, int(ys[-1] - ys[0]) + 1))
    return tuple(sorted(boxes, key=lambda box: (box.y, box.x)))


def _components(grid: NDArray[np.bool_]) -> list[tuple[int, int, int, int]]:
    """Bounding cells (top, left, bottom, right) of the 8-connected groups of set cells."""
    todo = {(int(r), int(c)) for r, c in zip(*np.nonzero(grid), strict=True)}
    found = []
    while todo:
        stack = [todo.pop()]
        top, left = bottom, right = stack[0]
        while stack:
            r, c = stack.pop()
            top, bottom, left, right = min(top, r), max(bottom, r), min(left, c), max(right, c)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    near = (r + dr, c + dc)
                    if near in todo:
                        todo.remove(near)
                        stack.append(near)
        found.append((top, left, bottom, right))
    return found


def marked_image(new: Pixels, mask: NDArray[np.bool_]) -> bytes:
    """The new image faded to grey with the changed pixels red, as a palette PNG: a quarter of
    an RGBA image's bytes to compress, deflated in parallel at the fastest zlib level (it is a
    throwaway view).  The palette does the fading, so each pixel is touched only to make it grey."""
    height, width = new.shape[:2]
    indexes = png_rows.fresh((height, width + 1))  # column 0: each row's PNG filter byte (0: None)
    grey = indexes[:, 1:]
    mode = "RGBA" if new.shape[2] == 4 else "RGB"

    step = max(1, SLICE_BYTES // max(1, new.shape[1] * new.shape[2]))

    def paint(first: int, last: int) -> None:
        # One band of rows per thread, a slice at a time (temporaries that stay in the cache);
        # Pillow's own grey (ITU-R 601-2 luma, rounded as it rounds).
        for top in range(first, last, step):
            bottom = min(last, top + step)
            grey[top:bottom] = np.asarray(Image.fromarray(new[top:bottom], mode).convert("L"))
            np.minimum(grey[top:bottom], _RED_INDEX - 1, out=grey[top:bottom])  # 255 is red: white shows as 254
            below = min(bottom, mask.shape[0])  # the mask covers the common area of two sizes
            if top < below:
                np.putmask(grey[top:below, : mask.shape[1]], mask[top:below], _RED_INDEX)

    list(png_rows.workers().map(lambda band: paint(*band), png_rows.bands(height)))
    return png_rows.encode_palette(indexes, _PALETTE)


# Palette indexes 0..254 are greys (index i shows grey i faded towards white); 255 is red.
_RED_INDEX = 255
_PALETTE = bytes([round(255 - (255 - i) * FADE) for i in range(255) for _ in range(3)] + list(RED))
