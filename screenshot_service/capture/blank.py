"""``blank_capture``: is an image one flat colour?  Decided cheaply, without an imaging library.

A PNG is decided from its own bytes: inflate the pixel rows (zlib, in C, streamed
so a page that is not blank stops after a few rows) and compare each row with
the few byte strings a flat row can be encoded as.  Once the first row is known
to be one colour ``p``, every later row is flat and equal to it exactly when
its bytes are, per PNG filter: None → the row itself; Sub → ``p`` then zeros;
Up and Paeth → zeros; Average → ``p - p//2`` then zeros.  Only the first row is
unfiltered byte by byte in Python.

JPEG and WebP are lossy, so their bytes say nothing cheap about flatness: the
caller takes a small PNG of the same area instead (see render.capture).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from .fullpage import _chunks

_BYTES_PER_PIXEL = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> bytes per 8-bit pixel
INFLATE_STEP = 1 << 20


def png_is_flat(data: bytes) -> bool | None:
    """True when every pixel of the PNG has the same value; None when it cannot tell."""
    try:
        chunks = list(_chunks(data))
    except ValueError:
        return None
    header = next((body for kind, body in chunks if kind == b"IHDR"), None)
    if header is None or len(header) < 13:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    bpp = _BYTES_PER_PIXEL.get(colour)
    if depth != 8 or bpp is None or interlace or not width or not height:
        return None
    stride = width * bpp
    rows = _rows(b"".join(body for kind, body in chunks if kind == b"IDAT"), stride + 1)
    first = next(rows, None)
    if first is None:
        return None
    flat = _first_row(first, bpp)
    if flat is None:
        return None
    pixel = flat[:bpp]
    if flat != pixel * width:
        return False
    zeros = bytes(stride - bpp)
    expected = {0: flat, 1: pixel + zeros, 2: bytes(stride), 3: bytes((b - b // 2) & 0xFF for b in pixel) + zeros,
                4: bytes(stride)}
    count = 1
    for row in rows:
        if expected.get(row[0]) != row[1:]:
            return False
        count += 1
    return count == height or None


def _rows(idat: bytes, length: int) -> Iterator[bytes]:
    """The filtered rows (filter byte + body), inflated a step at a time."""
    inflater = zlib.decompressobj()
    pending, buffer = idat, b""
    try:
        while True:
            chunk = inflater.decompress(pending, INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                chunk = inflater.flush()
                if not chunk:
                    return
            buffer += chunk
            view, pos = memoryview(buffer), 0
            while pos + length <= len(buffer):
                yield bytes(view[pos : pos + length])
                pos += length
            view.release()
            buffer = buffer[pos:]
    except zlib.error:
        return


def _first_row(row: bytes, bpp: int) -> bytes | None:
    """Unfilter the first row (the row above it is all zeros)."""
    kind, body = row[0], bytearray(row[1:])
    if kind in (0, 2):  # None; Up against zeros
        return bytes(body)
    if kind in (1, 4):  # Sub; Paeth against zeros predicts the left byte
        for i in range(bpp, len(body)):
            body[i] = (body[i] + body[i - bpp]) & 0xFF
        return bytes(body)
    if kind == 3:  # Average against zeros: half the left byte
        for i in range(bpp, len(body)):
            body[i] = (body[i] + (body[i - bpp] >> 1)) & 0xFF
        return bytes(body)
    return None
