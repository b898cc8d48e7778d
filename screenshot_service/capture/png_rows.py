"""PNG decoding and encoding for the visual diff, fast on the PNGs Chromium makes.

Chromium's fast PNG encoder (fullpage.shot_params: ``optimizeForSpeed``) filters every row
with Up, and a stitched page's strips start with a None or Sub row (fullpage.stitch_png).
Undoing Up is a running sum down the columns (mod 256), which numpy does a block of rows at a
time; Pillow undoes the filters row by row and takes about three times as long on a
1280 x 16384 page.  Any other PNG (Average or Paeth rows, palette, 16-bit, interlaced, a
transparency chunk) is left to Pillow: ``decode`` answers None.

The marked image is written here too: its rows are deflated in parallel segments joined
into one zlib stream (each but the last ends on a byte-aligned sync flush, pigz's way).
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from numpy.typing import NDArray

from .fullpage import _SIGNATURE, _chunk, _chunks

BLOCK = 128  # rows summed together per step: few Python steps, each over many rows
MAX_RUNS = 64  # runs of Up rows beyond which an unusual encoder is left to Pillow (Python steps per run)
MARK_LEVEL = 1  # zlib level of the marked image: it is a throwaway view
IDAT_BYTES = 1 << 20
INFLATE_BYTES = 1 << 20  # rows inflated at a time: a buffer that stays in the CPU's cache
WORKERS = os.cpu_count() or 2  # threads for work split in parts (zlib and numpy release the GIL)


@cache
def workers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="png-rows")


def bands(height: int) -> list[tuple[int, int]]:
    """``height`` rows cut in one band (top, bottom) per worker thread."""
    parts = max(1, min(WORKERS, height))
    cuts = [height * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


def fresh(shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """A zeroed uint8 array in memory of its own (an anonymous mapping, freed with the array).

    numpy asks for transparent huge pages on large arrays; on a machine whose memory Chromium
    keeps fragmenting, the kernel then compacts memory inside the allocating thread, which made
    a 63 MB array cost 0.2-0.8 s of CPU (measured: docs/visual-diff.md).  Ordinary pages cost
    far less to fault in."""
    size = max(1, math.prod(shape))
    return np.frombuffer(mmap.mmap(-1, size), np.uint8, math.prod(shape)).reshape(shape)


def decode(data: bytes) -> NDArray[np.uint8] | None:
    """Height x width x 3 (RGB) or 4 (RGBA) pixels of an 8-bit, non-interlaced RGB(A) PNG whose
    rows use only the None, Sub and Up filters; None for anything else (or a broken file)."""
    try:
        chunks = list(_chunks(data))
        kinds = [kind for kind, _ in chunks]
        if not kinds or kinds[0] != b"IHDR" or b"tRNS" in kinds:
            return None
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
        if depth != 8 or colour not in (2, 6) or interlace or not width or not height:
            return None
        bpp = 3 if colour == 2 else 4
        filters, pixels = _inflate(b"".join(body for kind, body in chunks if kind == b"IDAT"), height, width * bpp + 1)
    except (ValueError, struct.error, zlib.error):
        return None
    if int(filters.max()) > 2:
        return None
    # Runs of Up rows, each below a row that stands alone (None, Sub, or the first row)
    starts = np.union1d([0], np.flatnonzero(filters != 2))
    ends = np.append(starts[1:], height)
    runs = [(int(top), int(bottom)) for top, bottom in zip(starts, ends, strict=True) if bottom - top > 1]
    if len(runs) > MAX_RUNS:
        return None
    sub = np.flatnonzero(filters == 1)
    if sub.size:  # Sub: a running sum along the row, per channel
        pixels[sub] = np.cumsum(pixels[sub].reshape(sub.size, width, bpp), axis=1, dtype=np.uint8).reshape(sub.size, -1)
    for top, bottom in runs:
        _sum_down(pixels[top:bottom])
    return pixels.reshape(height, width, bpp)


def _inflate(stream: bytes, height: int, stride: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Each row's filter byte and its (still filtered) pixel bytes, inflated a slice of rows at a
    time into their arrays (no whole-image buffer in between); ValueError if the rows do not fit."""
    filters = np.empty(height, np.uint8)
    pixels = fresh((height, stride - 1))
    slice_bytes = stride * max(1, INFLATE_BYTES // stride)
    inflater = zlib.decompressobj()
    done = 0
    while not inflater.eof:
        out = inflater.decompress(stream, slice_bytes)
        stream = inflater.unconsumed_tail
        if not out:
            break
        count = len(out) // stride
        if len(out) % stride or done + count > height:
            raise ValueError("PNG rows do not match its header")
        rows = np.frombuffer(out, np.uint8).reshape(count, stride)
        filters[done : done + count] = rows[:, 0]
        pixels[done : done + count] = rows[:, 1:]
        done += count
    if done != height:
        raise ValueError("PNG rows do not match its header")
    return filters, pixels


def _sum_down(rows: NDArray[np.uint8]) -> None:
    """Each row += the (already summed) row above, in place: within blocks of BLOCK rows first
    (all blocks at once), then each block's rows += the running total of the blocks above."""
    blocks = rows.shape[0] // BLOCK
    whole = rows[: blocks * BLOCK].reshape(blocks, BLOCK, rows.shape[1])
    for i in range(1, BLOCK if blocks else 0):
        np.add(whole[:, i], whole[:, i - 1], out=whole[:, i])
    if blocks > 1:
        carry = whole[:, -1].copy()
        for j in range(1, blocks):
            np.add(carry[j], carry[j - 1], out=carry[j])
        whole[1:] += carry[:-1, None, :]
    for i in range(max(1, blocks * BLOCK), rows.shape[0]):
        np.add(rows[i], rows[i - 1], out=rows[i])


def encode_palette(indexes: NDArray[np.uint8], palette: bytes) -> bytes:
    """A palette PNG of ``indexes`` (height x (1 + width): column 0 is each row's filter byte,
    0 = None), deflated in one segment per worker thread."""
    height, stride = indexes.shape
    segments = [indexes[top:bottom].data for top, bottom in bands(height)]

    def deflate(index: int) -> bytes:
        compressor = zlib.compressobj(MARK_LEVEL, zlib.DEFLATED, -15)
        last = index == len(segments) - 1
        return compressor.compress(segments[index]) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    deflated = list(workers().map(deflate, range(len(segments))))
    checksum = 1
    for segment in segments:
        checksum = zlib.adler32(segment, checksum)
    stream = b"\x78\x01" + b"".join(deflated) + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", stride - 1, height, 8, 3, 0, 0, 0)
    out = [_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"PLTE", palette)]
    out.extend(_chunk(b"IDAT", stream[i : i + IDAT_BYTES]) for i in range(0, len(stream), IDAT_BYTES))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
