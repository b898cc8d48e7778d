"""Captures users can trust: warnings, wait_until=ready, disable_animations, time zone, locale, geolocation.

Real Chromium and the local test site; pixels are read back with Pillow (tests only).
No test orders events by time: late content waits on a gate the test opens, and
pages that never settle are bounded by the request's own deadline.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from tests import conftest, site
from tests.conftest import Service, image_of


async def _json(service: Service, path: str, **params: Any) -> dict[str, Any]:
    response = await service.shot(path, **params)
    body = await response.json()
    assert response.status == 200, body
    return body


def _codes(body: dict[str, Any]) -> list[str]:
    return [w["code"] for w in body["warnings"]]


async def _image(service: Service, path: str, **params: Any) -> Any:
    response = await service.shot(path, response_type="image", **params)
    assert response.status == 200, await response.text()
    return image_of(await response.read()).convert("RGB")


# -- each warning, when it fires and when it does not ---------------------------------------


async def test_a_good_page_has_no_warnings(service: Service) -> None:
    assert (await _json(service, "/images"))["warnings"] == []


async def test_http_error_fires_on_an_error_page_only(service: Service) -> None:
    assert _codes(await _json(service, "/status?code=500")) == ["http_error"]
    assert "http_error" not in _codes(await _json(service, "/paint"))


async def test_images_broken_counts_failed_images(service: Service) -> None:
    body = await _json(service, "/images?broken=3")
    warning = next(w for w in body["warnings"] if w["code"] == "images_broken")
    assert warning["details"] == {"count": 3}
    assert "images_broken" not in _codes(await _json(service, "/images?broken=0"))


async def test_fonts_not_loaded_when_a_web_font_is_still_pending(service: Service) -> None:
    with site.held_back() as token:
        assert "fonts_not_loaded" in _codes(await _json(service, f"/font-pending?token={token}"))
    assert "fonts_not_loaded" not in _codes(await _json(service, "/paint"))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
async def test_blank_capture_fires_for_a_flat_image_only(service: Service, fmt: str) -> None:
    assert "blank_capture" in _codes(await _json(service, "/blank", format=fmt))
    assert "blank_capture" not in _codes(await _json(service, "/paint", format=fmt))


async def test_blank_capture_on_full_page_and_element_captures(service: Service) -> None:
    assert "blank_capture" in _codes(await _json(service, "/blank", full_page="true"))
    assert "blank_capture" not in _codes(await _json(service, "/tall?h=1200", full_page="true"))
    assert "blank_capture" in _codes(await _json(service, "/paint", selector="#box"))  # one green square


async def test_clamped_fires_when_the_full_page_is_cut(service: Service) -> None:
    body = await _json(service, "/tall?h=3000", full_page="true", max_height="1000")
    assert body["clamped"] is True and "clamped" in _codes(body)
    assert "clamped" not in _codes(await _json(service, "/tall?h=900", full_page="true"))


async def test_ready_timeout_names_the_unmet_conditions_and_still_captures(service: Service) -> None:
    # The page's image is held back until the capture is over: the network never goes quiet.
    with site.held_back() as token:
        body = await _json(service, f"/pending-image?token={token}", wait_until="ready", timeout="5")
    warning = next(w for w in body["warnings"] if w["code"] == "ready_timeout")
    assert {"network", "images"} <= set(warning["details"]["unmet"])
    assert body["bytes"] > 0
    assert "ready_timeout" not in _codes(await _json(service, "/paint", wait_until="ready"))


async def test_warnings_never_fail_a_capture(service: Service) -> None:
    body = await _json(service, "/status?code=404", wait_until="ready")
    assert body["page"]["status_code"] == 404 and "http_error" in _codes(body)


# -- wait_until=ready ------------------------------------------------------------------------


async def test_late_content_is_captured_with_ready_and_missed_with_load(service: Service) -> None:
    with site.held_back() as token:
        # load: the late data is held back until the capture is over, so the page is still red.
        early = await _image(service, f"/late?token={token}", wait_until="load")
        assert early.getpixel((400, 300)) == site.LATE_BEFORE
    # ready: the data arrives (late), then an image; both are waited for.
    body = await _json(service, "/late?token=", wait_until="ready", response_type="base64")
    assert body["warnings"] == []
    settled = image_of(base64.b64decode(body["image_base64"])).convert("RGB")
    assert settled.getpixel((400, 300)) == site.LATE_AFTER
    assert settled.getpixel((20, 20)) == (0, 0, 255)  # the late image, decoded and painted


async def test_ready_waits_for_a_still_layout(service: Service) -> None:
    # An endless height animation: nothing loads, but the layout never holds still for 300 ms.
    body = await _json(service, "/shifting", wait_until="ready", timeout="5")
    warning = next(w for w in body["warnings"] if w["code"] == "ready_timeout")
    assert warning["details"]["unmet"] == ["layout"]
    # Frozen, the same page is ready.
    assert "ready_timeout" not in _codes(await _json(service, "/shifting", wait_until="ready",
                                                     disable_animations="true"))


async def test_ready_works_for_html_input(service: Service) -> None:
    response = await service.client.post("/v1/screenshot", json={
        "api_key": service.key, "wait_until": "ready",
        "html": "<body style='margin:0'><div style='width:100%;height:100vh;background:rgb(0,0,90)'>x</div></body>"})
    body = await response.json()
    assert response.status == 200, body
    assert "ready_timeout" not in _codes(body)


# -- disable_animations ------------------------------------------------------------------------


async def test_disable_animations_gives_identical_pixels_and_without_it_they_differ(service: Service) -> None:
    still = [(await _image(service, "/animated", disable_animations="true")).tobytes() for _ in range(2)]
    assert still[0] == still[1]
    moving = [(await _image(service, "/animated")).tobytes() for _ in range(2)]
    assert moving[0] != moving[1]  # random phases: equal only by a one-in-millions chance


async def test_disable_animations_ends_finite_animations_and_starts_infinite_ones(service: Service) -> None:
    image = await _image(service, "/animated", disable_animations="true")
    assert image.getpixel((70, 250)) == (0, 0, 255)  # the 60 s fade: at its end (opaque)
    assert image.getpixel((450, 250)) == (255, 0, 255)  # the 60 s transition: at its end (300 px wide)
    assert image.getpixel((70, 70)) == (0, 0, 0)  # infinite: at its start, whatever its random delay
    assert image.getpixel((300, 375)) == (0, 0, 0)  # the Web Animation: at its start


async def test_disable_animations_works_for_full_page_captures(service: Service) -> None:
    shots = [(await _image(service, "/animated", disable_animations="true", full_page="true")).tobytes()
             for _ in range(2)]
    assert shots[0] == shots[1]


# -- time zone, locale, geolocation -------------------------------------------------------------

GREEN, RED = (0, 200, 0), (200, 0, 0)


def _boxes(image: Any) -> dict[str, tuple[int, int, int]]:
    return {name: image.getpixel((50 + i * 100, 50)) for i, name in enumerate(("tz", "lang", "accept", "geo"))}


@pytest.mark.parametrize(("zone", "tag"), [("Europe/Paris", "de-DE"), ("Asia/Tokyo", "ja-JP")])
async def test_timezone_locale_and_geolocation_are_what_the_page_reads(
    service: Service, zone: str, tag: str
) -> None:
    path = f"/emulated?tz={zone}&lang={tag}&lat=48.8566&lon=2.3522"
    image = await _image(service, path, timezone=zone, locale=tag, geolocation="48.8566,2.3522,50",
                         wait_for_selector="#done")
    assert _boxes(image) == {"tz": GREEN, "lang": GREEN, "accept": GREEN, "geo": GREEN}


async def test_geolocation_as_a_json_object(service: Service) -> None:
    response = await service.client.post("/v1/screenshot", json={
        "api_key": service.key, "url": service.site.url + "/emulated?lat=-33.8688&lon=151.2093",
        "geolocation": {"latitude": -33.8688, "longitude": 151.2093}, "wait_for_selector": "#done",
        "response_type": "image"})
    assert response.status == 200, await response.text()
    assert _boxes(image_of(await response.read()).convert("RGB"))["geo"] == GREEN


async def test_without_emulation_the_page_sees_no_position(service: Service) -> None:
    image = await _image(service, "/emulated?tz=Europe/Paris&lat=1&lon=1", wait_for_selector="#done")
    assert _boxes(image)["geo"] == RED  # no permission, no position


async def test_geolocation_permission_is_for_the_targets_origin_only(
    make_service: Any, make_pool: Any, test_site: conftest.TestSite
) -> None:
    # The target redirects to the same page on another origin (another port): no permission there.
    other = web.AppRunner(site.build([]), access_log=None)
    await other.setup()
    tcp = web.TCPSite(other, "127.0.0.1", 0)
    await tcp.start()
    try:
        port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        allow = [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{port}"]
        pool = await make_pool(allow=allow)
        service: Service = await make_service(pool=pool, egress={"allow": allow})
        elsewhere = f"http://127.0.0.1:{port}/emulated?lat=1&lon=1"
        for url, expected in ((f"{service.site.url}/emulated?lat=1&lon=1", GREEN),
                              (f"{service.site.url}/redirect?to={quote(elsewhere, safe='')}", RED)):
            response = await service.client.post("/v1/screenshot", json={
                "api_key": service.key, "url": url, "geolocation": "1,1", "wait_for_selector": "#done",
                "response_type": "image"})
            assert response.status == 200, await response.text()
            assert _boxes(image_of(await response.read()).convert("RGB"))["geo"] == expected, url
    finally:
        await other.cleanup()


# -- a 400 for each bad value ---------------------------------------------------------------------

BAD_VALUES = [
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "Paris"),
    ("timezone", ""),
    ("locale", "english"),
    ("locale", "de_DE_"),
    ("locale", "12-34"),
    ("locale", "de-DE;q=1"),
    ("geolocation", "48.8"),
    ("geolocation", "91,0"),
    ("geolocation", "0,181"),
    ("geolocation", "1,2,-5"),
    ("geolocation", "north,east"),
    ("geolocation", "1,2,3,4"),
    ("wait_until", "settled"),
    ("disable_animations", "maybe"),
    ("fail_on_http_error", "yes"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
async def test_each_bad_value_is_a_400_naming_its_field(service: Service, name: str, value: str) -> None:
    response = await service.shot("/paint", **{name: value})
    body = await response.json()
    assert response.status == 400, body
    assert body["error"]["code"] == "invalid_parameter"
    assert list(body["error"]["details"]["fields"]) == [name]


@pytest.mark.parametrize("value", [
    {"latitude": 1}, {"latitude": 1, "longitude": 2, "altitude": 3}, {"latitude": "x", "longitude": 2}, [1, 2], 5,
])
async def test_bad_geolocation_objects_are_400(service: Service, value: Any) -> None:
    response = await service.client.post("/v1/screenshot", json={
        "api_key": service.key, "url": service.site.url + "/paint", "geolocation": value})
    body = await response.json()
    assert response.status == 400, body
    assert list(body["error"]["details"]["fields"]) == ["geolocation"]


async def test_new_options_shape_the_cache_fingerprint(service: Service) -> None:
    from screenshot_service.capture.options import CaptureOptions

    base = {"url": service.site.url + "/paint"}
    prints = {CaptureOptions.from_query({**base, **extra}).cache_fingerprint() for extra in (
        {}, {"timezone": "Europe/Paris"}, {"locale": "de-DE"}, {"geolocation": "1,2"}, {"wait_until": "ready"},
        {"disable_animations": "true"}, {"fail_on_http_error": "true"})}
    assert len(prints) == 7
    same = CaptureOptions.from_json({**base, "geolocation": {"latitude": 1, "longitude": 2}})
    assert same.cache_fingerprint() == CaptureOptions.from_query({**base, "geolocation": "1,2"}).cache_fingerprint()
    assert CaptureOptions.from_query({**base, "locale": "DE-de"}).locale == "de-DE"
    assert json.dumps(same.geolocation) == "[1.0, 2.0, 100.0]"


async def test_without_a_tz_database_the_browser_refuses_an_unknown_zone(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screenshot_service.capture import parsers

    monkeypatch.setattr(parsers, "_ZONES", frozenset())  # a slim image without tzdata: only the shape is checked
    response = await service.shot("/paint", timezone="Mars/Olympus_Mons")
    body = await response.json()
    assert response.status == 400, body
    assert list(body["error"]["details"]["fields"]) == ["timezone"]
    assert (await service.shot("/paint", timezone="Europe/Paris")).status == 200
