"""Decoded images kept for the next comparison: found again by the file's bytes, read-only,
and never more pixels held than the bound, the least recently used dropped first."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from screenshot_service.capture.decoded_images import DecodedImages


def png(shade: int, size: int = 10) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (shade, 0, 0)).save(out, "PNG")
    return out.getvalue()


def test_the_same_bytes_are_decoded_once_and_shared_read_only() -> None:
    images = DecodedImages()
    first = images.decode(png(1))
    assert images.decode(png(1)) is first and first[0, 0].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 0
    assert images.decode(png(2)) is not first and len(images) == 2


def test_the_bound_drops_the_least_recently_used() -> None:
    one = 10 * 10 * 3
    images = DecodedImages(max_bytes=2 * one)
    a, b = images.decode(png(1)), images.decode(png(2))
    assert images.decode(png(1)) is a  # now b is the least recently used
    images.decode(png(3))
    assert len(images) == 2 and images.held_bytes == 2 * one
    assert images.decode(png(1)) is a and images.decode(png(2)) is not b
    too_big = images.decode(png(4, size=30))  # larger than the whole bound: decoded, not kept
    assert np.all(too_big[..., 0] == 4) and images.held_bytes <= 2 * one
