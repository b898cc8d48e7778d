"""blank_capture's PNG check against every PNG filter, without a browser.

The images are encoded here with each filter type (and mixes of them), so every
branch of ``png_is_flat`` meets the bytes a real encoder could write; Pillow
(tests only) checks the encoder.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from screenshot_service.capture.blank import png_is_flat
from screenshot_service.capture.fullpage import stitch_png


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, above: bytes, bpp: int, kind: int) -> bytes:
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = above[i]
        c = above[i - bpp] if i >= bpp else 0
        predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
        out.append((x - predictor) & 0xFF)
    return bytes([kind]) + bytes(out)


def encode(pixels: list[list[tuple[int, ...]]], filters: list[int]) -> bytes:
    height, width, bpp = len(pixels), len(pixels[0]), len(pixels[0][0])
    rows = [b"".join(bytes(p) for p in line) for line in pixels]
    above = bytes(width * bpp)
    raw = bytearray()
    for y, row in enumerate(rows):
        raw += _filtered(row, above, bpp, filters[y % len(filters)])
        above = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[bpp], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


FILTER_MIXES = [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [3, 4], [1, 3]]


@pytest.mark.parametrize("filters", FILTER_MIXES)
@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (201, 13, 77), (10, 20, 30, 0), (255, 1, 128, 255)])
def test_a_flat_image_is_blank_whatever_the_filters(filters: list[int], colour: tuple[int, ...]) -> None:
    pixels = [[colour] * 23 for _ in range(11)]
    data = encode(pixels, filters)
    assert Image.open(io.BytesIO(data)).getcolors() == [(23 * 11, colour)]
    assert png_is_flat(data) is True


@pytest.mark.parametrize("filters", FILTER_MIXES)
@pytest.mark.parametrize("where", ["first", "last", "middle", "row-start", "row-end"])
def test_one_different_pixel_is_not_blank(filters: list[int], where: str) -> None:
    colour, odd = (201, 13, 77), (201, 13, 78)
    pixels = [[colour] * 17 for _ in range(9)]
    y, x = {"first": (0, 5), "last": (8, 16), "middle": (4, 8), "row-start": (6, 0), "row-end": (3, 16)}[where]
    pixels[y][x] = odd
    assert png_is_flat(encode(pixels, filters)) is False


def test_random_images_are_not_blank_and_their_flat_twins_are() -> None:
    rng = random.Random(7)
    for _ in range(20):
        width, height = rng.randint(1, 30), rng.randint(1, 30)
        filters = [rng.randint(0, 4) for _ in range(rng.randint(1, 5))]
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        assert png_is_flat(encode([[colour] * width for _ in range(height)], filters)) is True
        noisy = [[tuple(rng.randint(0, 255) for _ in range(3)) for _ in range(width)] for _ in range(height)]
        if len({p for row in noisy for p in row}) > 1:
            assert png_is_flat(encode(noisy, filters)) is False


def test_pillow_encodings_and_stitched_strips() -> None:
    for mode, colour in (("RGB", (3, 4, 5)), ("RGBA", (3, 4, 5, 6))):
        buffer = io.BytesIO()
        Image.new(mode, (640, 400), colour).save(buffer, "PNG")
        assert png_is_flat(buffer.getvalue()) is True
    strip = encode([[(9, 9, 9)] * 40 for _ in range(10)], [4])
    assert png_is_flat(stitch_png([strip, strip, strip])) is True
    other = encode([[(9, 9, 10)] * 40 for _ in range(10)], [4])
    assert png_is_flat(stitch_png([strip, other, strip])) is False


def test_what_it_cannot_read_is_no_verdict() -> None:
    assert png_is_flat(b"not a png") is None
    assert png_is_flat(b"\x89PNG\r\n\x1a\n") is None
    truncated = encode([[(1, 2, 3)] * 10 for _ in range(10)], [0])
    header_only = truncated[: truncated.index(b"IDAT") - 4]
    assert png_is_flat(header_only) is None
