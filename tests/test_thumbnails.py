"""Thumbnails (SPEC §3.1): exact sizes, the right pixels in the right places, every capture area.

The pages are POSTed as ``html``: four coloured quadrants filling the viewport,
with a magenta band down each side that a ``cover`` crop must cut away.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from screenshot_service.capture import fullpage, thumbnail
from screenshot_service.capture.options import CaptureOptions
from tests.conftest import Service, image_of

TOP_LEFT, TOP_RIGHT = (255, 0, 0), (0, 160, 0)
BOTTOM_LEFT, BOTTOM_RIGHT = (0, 0, 255), (255, 200, 0)
BAND = (255, 0, 255)
_FIXED = "position: fixed; width: 50vw; height: 50vh"
QUADRANTS = (
    f'<!doctype html><body style="margin: 0">'
    f'<div style="{_FIXED}; left: 0; top: 0; background: rgb{TOP_LEFT}"></div>'
    f'<div style="{_FIXED}; right: 0; top: 0; background: rgb{TOP_RIGHT}"></div>'
    f'<div style="{_FIXED}; left: 0; bottom: 0; background: rgb{BOTTOM_LEFT}"></div>'
    f'<div style="{_FIXED}; right: 0; bottom: 0; background: rgb{BOTTOM_RIGHT}"></div>'
    f'<div style="position: fixed; left: 0; top: 0; width: 100px; height: 100vh; background: rgb{BAND}"></div>'
    f'<div style="position: fixed; right: 0; top: 0; width: 100px; height: 100vh; background: rgb{BAND}"></div>'
)
BANDS = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200), (200, 0, 200)]


def banded(height: int, count: int) -> str:
    """A page ``height`` CSS px tall of ``count`` horizontal bands of BANDS' colours."""
    rows = "".join(f'<div style="height: {height / count}px; background: rgb{BANDS[i % len(BANDS)]}"></div>'
                   for i in range(count))
    return f"<!doctype html><style>body {{ margin: 0 }}</style>{rows}"


async def post(service: Service, **body: Any) -> Any:
    return await service.client.post("/v1/screenshot", json={"html": QUADRANTS, **body}, headers=service.auth())


async def image(service: Service, **body: Any) -> Image.Image:
    response = await post(service, response_type="image", **body)
    assert response.status == 200, await response.text()
    return image_of(await response.read()).convert("RGB")


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 0) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def assert_quadrants(img: Image.Image, *, tolerance: int = 0, inset: float = 0.25) -> None:
    """The four quadrant colours at the centres of the image's quadrants (away from the side bands)."""
    w, h = img.size
    for (fx, fy), colour in (((inset, 0.25), TOP_LEFT), ((1 - inset, 0.25), TOP_RIGHT),
                             ((inset, 0.75), BOTTOM_LEFT), ((1 - inset, 0.75), BOTTOM_RIGHT)):
        pixel = img.getpixel((int(w * fx), int(h * fy)))
        assert near(pixel, colour, tolerance), (fx, fy, pixel, colour)


# -- sizes and pixels ------------------------------------------------------------------------------


async def test_width_alone_keeps_the_aspect_ratio_and_json_sizes_are_the_thumbnails(service: Service) -> None:
    body = await (await post(service, thumb_width=320)).json()
    assert (body["width"], body["height"]) == (320, 200)
    img = await image(service, thumb_width=320)
    assert img.size == (320, 200)
    assert_quadrants(img)
    assert near(img.getpixel((5, 100)), BAND) and near(img.getpixel((314, 100)), BAND)  # contain: nothing cut


async def test_height_alone_keeps_the_aspect_ratio(service: Service) -> None:
    img = await image(service, thumb_height=100)
    assert img.size == (160, 100)
    assert_quadrants(img)


async def test_contain_fits_inside_the_box(service: Service) -> None:
    img = await image(service, thumb_width=200, thumb_height=200)
    assert img.size == (200, 125)
    assert_quadrants(img)
    assert near(img.getpixel((5, 60)), BAND)


async def test_cover_fills_the_box_and_crops_around_the_centre(service: Service) -> None:
    img = await image(service, thumb_width=200, thumb_height=200, thumb_fit="cover")
    assert img.size == (200, 200)
    # The central 800 x 800 CSS px of the 1280 x 800 viewport: the quadrants meet in the middle,
    # and the side bands (the outer 100 px) are cut away.
    assert_quadrants(img)
    for x, y in ((0, 0), (0, 199), (199, 0), (199, 199), (1, 100), (198, 100)):
        assert not near(img.getpixel((x, y)), BAND, 60), (x, y)
    assert near(img.getpixel((98, 50)), TOP_LEFT) and near(img.getpixel((101, 50)), TOP_RIGHT)


async def test_cover_of_a_wide_box_crops_the_height(service: Service) -> None:
    img = await image(service, thumb_width=320, thumb_height=40, thumb_fit="cover")
    assert img.size == (320, 40)  # scaled to 320 x 200, then the middle 40 rows
    assert near(img.getpixel((100, 5)), TOP_LEFT) and near(img.getpixel((100, 34)), BOTTOM_LEFT)
    assert near(img.getpixel((2, 20)), BAND)


async def test_one_side_alone_ignores_the_fit(service: Service) -> None:
    assert (await image(service, thumb_width=320, thumb_fit="cover")).size == (320, 200)


async def test_never_enlarged(service: Service) -> None:
    assert (await image(service, thumb_width=2000)).size == (1280, 800)
    # cover: the side over the box is cropped, the one under it is not stretched
    img = await image(service, thumb_width=2000, thumb_height=400, thumb_fit="cover")
    assert img.size == (1280, 400)
    assert near(img.getpixel((640 - 20, 100)), TOP_LEFT) and near(img.getpixel((640 + 20, 300)), BOTTOM_RIGHT)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
async def test_jpeg_and_webp_thumbnails(service: Service, fmt: str) -> None:
    response = await post(service, thumb_width=320, thumb_height=320, thumb_fit="cover", format=fmt,
                          response_type="image")
    assert response.status == 200 and response.content_type == f"image/{fmt}"
    raw = image_of(await response.read())
    assert raw.format == fmt.upper() and raw.size == (320, 320)
    assert_quadrants(raw.convert("RGB"), tolerance=24)


async def test_device_scale_factor_2_gives_the_thumbnail_size_not_double(service: Service) -> None:
    img = await image(service, device_scale_factor=2, thumb_width=320)
    assert img.size == (320, 200)
    assert_quadrants(img)
    cover = await image(service, device_scale_factor=2, thumb_width=150, thumb_height=150, thumb_fit="cover")
    assert cover.size == (150, 150)
    assert_quadrants(cover)


async def test_a_scrolled_viewport_is_thumbnailed_where_it_is_scrolled(service: Service) -> None:
    page = banded(4000, 5)  # 800 px bands: the viewport scrolled to 1600 shows the third band only
    img = await image(service, html=page, js="window.scrollTo(0, 1600)", thumb_width=320)
    assert img.size == (320, 200)
    for y in (2, 100, 197):
        assert near(img.getpixel((160, y)), BANDS[2]), y


async def test_a_viewport_thumbnail_keeps_the_layout_of_the_viewport(service: Service) -> None:
    # A fixed footer and a 100vh block: laid out against the viewport, as in the plain capture,
    # not against a viewport stretched to the whole document.
    page = (banded(4000, 5) + '<div style="position: fixed; left: 0; bottom: 0; width: 100%; height: 80px; '
            'background: rgb(9, 9, 9)"></div><div style="position: absolute; left: 0; top: 1600px; width: 200px; '
            'height: 100vh; background: rgb(250, 250, 250)"></div>')
    img = await image(service, html=page, js="window.scrollTo(0, 1600)", thumb_width=320)
    plain = await image(service, html=page, js="window.scrollTo(0, 1600)")
    for x, y in ((160, 195), (160, 170), (20, 100), (20, 190), (100, 100)):
        assert near(img.getpixel((x, y)), plain.getpixel((x * 4 + 2, y * 4 + 2)), 8), (x, y)
    assert near(img.getpixel((160, 195)), (9, 9, 9)) and near(img.getpixel((20, 100)), (250, 250, 250))


# -- capture areas ---------------------------------------------------------------------------------


async def test_full_page_thumbnail(service: Service) -> None:
    img = await image(service, html=banded(4000, 4), full_page=True, thumb_width=320)
    assert img.size == (320, 1000)
    for band in range(4):
        assert near(img.getpixel((160, band * 250 + 125)), BANDS[band]), band


async def test_tall_full_page_thumbnail_in_strips_is_whole(service: Service) -> None:
    # 1000 x 9375 px: taller than one strip (8192 rows), so it is stitched from two.
    img = await image(service, html=banded(12000, 12), full_page=True, thumb_width=1000)
    assert img.size == (1000, 9375) and img.height > fullpage.TILE_ROWS
    step = 9375 / 12
    for band in range(12):
        assert near(img.getpixel((500, int(band * step + step / 2))), BANDS[band % len(BANDS)]), band
    for y in (8192 - 3, 8192, 8192 + 3):  # the seam: band 10 runs from row 7812 to 8593
        assert near(img.getpixel((500, y)), BANDS[10 % len(BANDS)]), y


async def test_a_jpeg_thumbnail_of_a_page_taller_than_one_shot_is_not_cut(service: Service) -> None:
    # A plain JPEG stops at 16384 device px (one shot); the thumbnail's one shot is 320 x 5000.
    tall = {"html": banded(20000, 4), "full_page": True, "max_height": 20000, "format": "jpeg"}
    body = await (await post(service, **tall, thumb_width=320)).json()
    assert (body["width"], body["height"], body.get("clamped")) == (320, 5000, None)
    assert "clamped" not in {w["code"] for w in body["warnings"]}
    img = await image(service, **tall, thumb_width=320)
    assert near(img.getpixel((160, 4900)), BANDS[3], 24)
    plain = await (await post(service, **tall)).json()
    assert (plain["height"], plain.get("clamped")) == (16384, True)  # the same page, unscaled, is cut


async def test_full_page_cover_takes_the_middle_of_the_page(service: Service) -> None:
    img = await image(service, html=banded(3000, 3), full_page=True, thumb_width=100, thumb_height=100,
                      thumb_fit="cover", format="webp")
    assert img.size == (100, 100)
    assert near(img.getpixel((50, 50)), BANDS[1], 24)  # the middle third of the page


async def test_selector_thumbnail(service: Service) -> None:
    page = ('<!doctype html><body style="margin: 0"><div id="el" style="position: absolute; left: 300px; '
            'top: 150px; width: 400px; height: 200px; background: linear-gradient(to right, rgb(255, 0, 0) 50%, '
            'rgb(0, 0, 255) 50%)"></div>')
    img = await image(service, html=page, selector="#el", thumb_width=100)
    assert img.size == (100, 50)
    assert near(img.getpixel((10, 25)), (255, 0, 0)) and near(img.getpixel((90, 25)), (0, 0, 255))


async def test_clip_thumbnail(service: Service) -> None:
    img = await image(service, clip={"x": 640, "y": 0, "width": 640, "height": 400}, thumb_width=64)
    assert img.size == (64, 40)
    assert near(img.getpixel((20, 20)), TOP_RIGHT) and near(img.getpixel((63, 20)), BAND)


# -- the arithmetic, for every size ---------------------------------------------------------------


def half_up(value: float) -> int:
    return math.floor(value + 0.5)  # as Chromium rounds an image's size


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(width=st.integers(1, 3840), height=st.integers(1, 65536), dpr=st.sampled_from([1.0, 1.5, 2.0, 2.625, 3.0]),
       box_w=st.one_of(st.none(), st.integers(16, 3840)), box_h=st.one_of(st.none(), st.integers(16, 3840)),
       fit=st.sampled_from(["contain", "cover"]))
def test_fit_gives_exact_sizes_inside_the_area(width: int, height: int, dpr: float, box_w: int | None,
                                               box_h: int | None, fit: str) -> None:
    opts = CaptureOptions(url="https://e.com", device_scale_factor=dpr, thumb_width=box_w, thumb_height=box_h,
                          thumb_fit=fit)
    thumb = thumbnail.fit(opts, (10, 20, width, height))
    plain_w, plain_h = half_up(width * dpr), half_up(height * dpr)
    if thumb is None:  # only when the plain capture already is the thumbnail (or neither size was given)
        assert (box_w is None and box_h is None) or (
            (box_w is None or plain_w <= box_w) and (box_h is None or plain_h <= box_h))
        return
    x, y, w, h = thumb.area
    assert 0 < thumb.scale <= 1
    # Chromium's image is round(clip x scale x device scale factor): exactly the computed size
    assert (half_up(w * thumb.scale * dpr), half_up(h * thumb.scale * dpr)) == (thumb.width, thumb.height)
    assert 10 <= x and 20 <= y and x + w <= 10 + width + 1 / (thumb.scale * dpr)
    assert y + h <= 20 + height + 1 / (thumb.scale * dpr)  # inside the area (up to half an image pixel)
    if box_w is not None and box_h is not None and fit == "cover":
        assert (thumb.width, thumb.height) == (min(box_w, plain_w), min(box_h, plain_h)) or thumb.scale < 1
        assert thumb.width <= box_w and thumb.height <= box_h
        if thumb.scale < 1:
            assert (thumb.width, thumb.height) == (box_w, box_h)
    else:
        assert box_w is None or thumb.width <= box_w
        assert box_h is None or thumb.height <= box_h
        assert w == pytest.approx(width, abs=1 / (thumb.scale * dpr))  # nothing cropped: the aspect ratio kept
        assert h == pytest.approx(height, abs=1 / (thumb.scale * dpr))


# -- cache and refusals ----------------------------------------------------------------------------


async def test_the_cache_tells_thumbnails_apart(service: Service) -> None:
    first = await service.shot(cache="1", thumb_width=320)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    other = await service.shot(cache="1", thumb_width=160)
    assert other.headers["X-Cache"] == "MISS" and (await other.json())["width"] == 160
    fit = await service.shot(cache="1", thumb_width=160, thumb_height=160, thumb_fit="cover")
    assert fit.headers["X-Cache"] == "MISS"
    again = await service.shot(cache="1", thumb_width=320)
    assert again.headers["X-Cache"] == "HIT" and (await again.json())["width"] == 320
    plain = await service.shot(cache="1")
    assert plain.headers["X-Cache"] == "MISS"


@pytest.mark.parametrize(("params", "fields"), [
    ({"thumb_width": "15"}, {"thumb_width"}),
    ({"thumb_width": "3841"}, {"thumb_width"}),
    ({"thumb_height": "0"}, {"thumb_height"}),
    ({"thumb_height": "wide"}, {"thumb_height"}),
    ({"thumb_width": "100", "thumb_fit": "stretch"}, {"thumb_fit"}),
    ({"thumb_width": "320", "format": "pdf"}, {"thumb_width", "format"}),
    ({"thumb_height": "320", "format": "pdf"}, {"thumb_height", "format"}),
    ({"thumb_fit": "cover", "format": "pdf"}, {"thumb_fit", "format"}),
])
async def test_bad_thumbnail_options_are_400_naming_the_fields(
        service: Service, params: dict[str, str], fields: set[str]) -> None:
    response = await service.shot(**params)
    assert response.status == 400
    error = (await response.json())["error"]
    assert set(error["details"]["fields"]) == fields
    assert "unknown parameter" not in error["details"]["fields"].values()
    if "format" in fields:
        assert "pdf" in error["details"]["fields"]["format"]
