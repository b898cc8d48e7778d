"""The diff engine on synthetic pixels: pixelmatch's colour distance and threshold, the common
area of different sizes, and the regions around changes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from screenshot_service.capture import diff_engine
from screenshot_service.capture.diff_options import MAX_REGIONS


def pixelmatch_delta(p1: tuple[int, int, int, int], p2: tuple[int, int, int, int]) -> float:
    """pixelmatch's colorDelta, written out as in its source (alpha blended on white)."""
    def blend(c: float, a: float) -> float:
        return 255 + (c - 255) * a

    (r1, g1, b1, a1), (r2, g2, b2, a2) = p1, p2
    if a1 < 255:
        r1, g1, b1 = (blend(c, a1 / 255) for c in (r1, g1, b1))  # type: ignore[assignment]
    if a2 < 255:
        r2, g2, b2 = (blend(c, a2 / 255) for c in (r2, g2, b2))  # type: ignore[assignment]
    y = (r1 * 0.29889531 + g1 * 0.58662247 + b1 * 0.11448223) - (r2 * 0.29889531 + g2 * 0.58662247 + b2 * 0.11448223)
    i = (r1 * 0.59597799 - g1 * 0.27417610 - b1 * 0.32180189) - (r2 * 0.59597799 - g2 * 0.27417610 - b2 * 0.32180189)
    q = (r1 * 0.21147017 - g1 * 0.52261711 + b1 * 0.31114694) - (r2 * 0.21147017 - g2 * 0.52261711 + b2 * 0.31114694)
    return 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q


PAIRS = [((0, 0, 0, 255), (255, 255, 255, 255)), ((255, 0, 0, 255), (0, 0, 255, 255)),
         ((100, 100, 100, 255), (104, 104, 104, 255)), ((0, 0, 0, 0), (255, 255, 255, 255)),
         ((10, 200, 30, 128), (10, 200, 30, 255)), ((250, 120, 3, 255), (249, 121, 3, 255))]


def one_pixel(rgba: tuple[int, int, int, int]) -> np.ndarray:
    return np.array([[rgba]], np.uint8)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_the_colour_distance_is_pixelmatchs(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> None:
    expected = pixelmatch_delta(a, b)
    assert float(diff_engine.yiq_delta(one_pixel(a)[0], one_pixel(b)[0])[0]) == pytest.approx(expected, rel=1e-4, abs=1e-3)
    # A pair counts as changed exactly when its distance exceeds 35215 * threshold².
    for threshold in (0.0, 0.01, 0.05, 0.1, 0.5, 1.0):
        changed = diff_engine.compare(one_pixel(a), one_pixel(b), threshold).changed_pixels
        assert changed == (expected > 35215 * threshold ** 2), threshold


def test_different_sizes_compare_the_common_top_left_area() -> None:
    old = np.full((40, 30, 4), 255, np.uint8)
    new = np.full((50, 20, 4), 255, np.uint8)
    new[35:45, 5:10] = (0, 0, 0, 255)  # half of it inside the common 40 x 20
    found = diff_engine.compare(old, new, 0.1)
    assert found.size_changed and found.compared_pixels == 40 * 20
    assert found.changed_pixels == 5 * 5 and found.changed_ratio == 25 / 800
    assert [b.to_json() for b in found.regions] == [{"x": 5, "y": 35, "width": 5, "height": 5}]


def test_regions_are_tight_separate_and_at_most_fifty() -> None:
    old = np.full((400, 400, 4), 255, np.uint8)
    new = old.copy()
    new[10:20, 10:30] = (0, 0, 0, 255)
    new[200:260, 300:310] = (0, 0, 0, 255)
    found = diff_engine.compare(old, new, 0.1)
    assert [b.to_json() for b in found.regions] == [{"x": 10, "y": 10, "width": 20, "height": 10},
                                                   {"x": 300, "y": 200, "width": 10, "height": 60}]
    speckled = old.copy()
    speckled[5::40, 5::40] = (0, 0, 0, 255)  # 100 isolated dots
    many = diff_engine.compare(old, speckled, 0.1)
    assert many.changed_pixels == 100 and 1 <= len(many.regions) <= MAX_REGIONS
    covered = np.zeros((400, 400), bool)
    for box in many.regions:
        covered[box.y:box.y + box.height, box.x:box.x + box.width] = True
    assert covered[5::40, 5::40].all()  # every changed pixel is inside a region


def test_the_marked_image_is_grey_where_unchanged_and_red_where_changed() -> None:
    old = np.zeros((20, 30, 4), np.uint8)
    old[..., :3] = (30, 120, 220)
    old[..., 3] = 255
    new = old.copy()
    new[5:10, 5:10, :3] = (200, 10, 10)
    found = diff_engine.compare(old, new, 0.1)
    marked = Image.open(io.BytesIO(diff_engine.marked_image(new, found.mask))).convert("RGB")
    assert marked.size == (30, 20) and marked.getpixel((7, 7)) == (255, 0, 0)
    r, g, b = marked.getpixel((20, 15))
    assert r == g == b and r > 150  # grey, faded towards white
