"""``blank_capture``: is an image one flat colour?  Decided cheaply, without an imaging library.

A PNG is decided from its own bytes: inflate the pixel rows (zlib, in C, streamed
so a page that is not blank stops after a few rows) and compare each row with
the few byte strings a flat row of colour ``p`` can be encoded as.  ``p`` is the
first pixel of the first row, stored as it is whatever the filter (nothing lies
left of it or above it).  The first row is flat exactly when its bytes are, per
filter: None and Up → ``p`` repeated; Sub and Paeth → ``p`` then zeros; Average →
``p`` then ``p - p//2`` repeated.  Every later row, per filter: None → ``p``
repeated; Sub → ``p`` then zeros; Up and Paeth → zeros; Average → ``p - p//2``
then zeros.  No byte is touched in Python: every check is one comparison of byte
strings, so the check holds the GIL for microseconds, not for a loop over a row
(which, in a worker thread, made the event loop wait for the GIL on every send).

JPEG and WebP are lossy, so their bytes say nothing cheap about flatness: the
caller takes a small PNG of the same area instead (see render.capture).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from .fullpage import _chunks

_BYTES_PER_PIXEL = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> bytes per 8-bit pixel
INFLATE_STEP = 1 << 16  # a page that is not blank is usually told within the first step


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
    if first is None or first[0] > 4:
        return None
    pixel, zeros = first[1 : 1 + bpp], bytes(stride - bpp)
    half = bytes((b - b // 2) & 0xFF for b in pixel)  # Average's residue, bpp bytes
    flat_first = {0: pixel * width, 1: pixel + zeros, 2: pixel * width, 3: pixel + half * (width - 1),
                  4: pixel + zeros}  # fmt: skip
    if flat_first[first[0]] != first[1:]:
        return False
    expected = {0: pixel * width, 1: pixel + zeros, 2: bytes(stride), 3: half + zeros, 4: bytes(stride)}
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

