"""The diff's own PNG decoding and marked-image encoding give Pillow's pixels: every row filter
it takes on (None, Sub, Up, mixed as stitched strips mix them), RGB and RGBA, blocks of rows
and their remainders; PNGs it does not take on go to Pillow with the same result."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from screenshot_service.capture import diff_engine, png_rows
from screenshot_service.capture.fullpage import _SIGNATURE, _chunk, stitch_png


def filtered_png(pixels: np.ndarray, filters: list[int]) -> bytes:
    """A PNG of ``pixels`` whose row r is filtered with ``filters[r]`` (0 None, 1 Sub, 2 Up,
    3 Average, 4 Paeth), written out from the PNG specification."""
    height, width, bpp = pixels.shape
    flat = pixels.reshape(height, width * bpp).astype(np.int32)
    out = bytearray()
    for r, kind in enumerate(filters):
        row = flat[r]
        above = flat[r - 1] if r else np.zeros_like(row)
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, np.int32), above[:-bpp]])
        if kind == 3:
            predicted = (left + above) // 2
        elif kind == 4:
            p = left + above - upper_left
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - upper_left)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
        else:
            predicted = (0 * row, left, above)[kind]
        out += bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if bpp == 3 else 6, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(out), 1))
            + _chunk(b"IEND", b""))


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def noise(height: int, width: int, bpp: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, bpp), dtype=np.uint8)


@pytest.mark.parametrize("bpp", [3, 4])
@pytest.mark.parametrize("height", [1, 127, 128, 300, 2 * png_rows.BLOCK + 5])
def test_up_none_and_sub_rows_decode_to_pillows_pixels(bpp: int, height: int) -> None:
    pixels = noise(height, 37, bpp, height)
    rng = np.random.default_rng(bpp)
    mixed = [2] * height
    for row in rng.integers(0, height, 6):
        mixed[row] = int(rng.integers(0, 2))
    for filters in ([2] * height, [0] + [2] * (height - 1), mixed, [1] * height, [0, 1] * height):
        data = filtered_png(pixels, filters[:height])
        decoded = png_rows.decode(data)
        assert decoded is not None and decoded.shape == (height, 37, bpp)
        assert np.array_equal(decoded, pixels) and np.array_equal(decoded, pillow(data))


def test_stitched_strips_decode_to_pillows_pixels() -> None:
    pixels = noise(700, 50, 3, 7)
    strips = [filtered_png(pixels[top:top + 250], [first] + [2] * (min(250, 700 - top) - 1))
              for top, first in ((0, 2), (250, 4), (500, 3))]  # stitching rewrites Paeth and Average first rows
    stitched = stitch_png(strips)
    decoded = png_rows.decode(stitched)
    assert decoded is not None and np.array_equal(decoded, pixels)


@pytest.mark.parametrize("kind", [3, 4])
def test_average_and_paeth_rows_are_left_to_pillow(kind: int) -> None:
    pixels = noise(20, 9, 3, kind)
    data = filtered_png(pixels, [2] * 10 + [kind] + [2] * 9)
    assert png_rows.decode(data) is None
    assert np.array_equal(diff_engine.decode(data), pixels)


def test_other_pngs_are_left_to_pillow() -> None:
    grey = Image.fromarray(noise(10, 10, 1, 1)[..., 0], "L")
    transparent = Image.fromarray(noise(10, 10, 3, 2), "RGB")
    for image, info in ((grey, {}), (transparent, {"transparency": (1, 2, 3)})):
        out = io.BytesIO()
        image.save(out, "PNG", **info)
        assert png_rows.decode(out.getvalue()) is None
    assert png_rows.decode(b"not a png") is None
    truncated = filtered_png(noise(30, 30, 3, 3), [2] * 30)[:-40]
    assert png_rows.decode(truncated) is None
    many_runs = [0, 2] * (png_rows.MAX_RUNS + 1)
    pixels = noise(len(many_runs), 5, 3, 4)
    data = filtered_png(pixels, many_runs)
    assert png_rows.decode(data) is None and np.array_equal(diff_engine.decode(data), pixels)


@pytest.mark.parametrize("bpp", [3, 4])
def test_the_marked_image_has_pillows_grey_and_red_where_the_mask_says(bpp: int) -> None:
    new = noise(301, 40, bpp, bpp)
    mask = np.zeros((250, 30), bool)  # a common area smaller than the new image
    mask[::7, ::3] = True
    marked = Image.open(io.BytesIO(diff_engine.marked_image(new, mask)))
    expected = np.minimum(np.asarray(Image.fromarray(new).convert("L")), 254)
    expected[:250, :30][mask] = 255
    assert marked.mode == "P" and np.array_equal(np.asarray(marked), expected)
    assert bytes(marked.getpalette() or []) == diff_engine._PALETTE
