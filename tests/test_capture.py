"""The synchronous screenshot API end to end: real Chromium, real pixels."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from screenshot_service.appkeys import POOL
from tests.conftest import Service, answered_by, image_of, kill_process_group, wait_for
from tests.site import PAINT_RGB, held_back


async def test_javascript_runs_and_paints_pixels(service: Service) -> None:
    response = await service.shot("/paint", response_type="image")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (1280, 800)
    assert image.getpixel((200, 200)) == PAINT_RGB  # inside the JS-painted square
    assert image.getpixel((20, 20)) == (255, 255, 255)  # outside it


@pytest.mark.parametrize(
    ("fmt", "pil_format", "content_type"),
    [("png", "PNG", "image/png"), ("jpeg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
async def test_each_format_decodes_at_the_requested_size(
    service: Service, fmt: str, pil_format: str, content_type: str
) -> None:
    response = await service.shot("/paint", format=fmt, width=640, height=480, response_type="image")
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    image = image_of(await response.read())
    assert image.format == pil_format
    assert image.size == (640, 480)
    red, green, blue = image.convert("RGB").getpixel((200, 200))
    assert green > 100 and red < 40 and blue < 40  # the painted square, give or take compression


async def test_device_scale_factor_multiplies_pixels(service: Service) -> None:
    response = await service.shot("/paint", width=400, height=300, device_scale_factor=2)
    body = await response.json()
    assert (body["width"], body["height"]) == (800, 600)
    image = image_of(await (await service.client.get(_path(body["url"]))).read())
    assert image.size == (800, 600)
    assert image.convert("RGB").getpixel((400, 400)) == PAINT_RGB  # CSS (200,200) at 2x


async def test_full_page_height_equals_the_page_height(service: Service) -> None:
    response = await service.shot("/tall?h=3000", full_page="true", response_type="image")
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (1280, 3000)
    assert image.getpixel((640, 2990)) == (255, 0, 0)  # the red footer at the very bottom


async def test_full_page_is_clamped_to_max_height(service: Service) -> None:
    response = await service.shot("/tall?h=5000", full_page="1", max_height=2000)
    body = await response.json()
    assert response.status == 200
    assert body["height"] == 2000 and body["clamped"] is True


async def test_json_response_points_at_a_stored_file(service: Service) -> None:
    response = await service.shot("/paint")
    assert response.status == 200
    body = await response.json()
    assert set(body) >= {"url", "expires_at", "format", "width", "height", "bytes", "took_ms", "cached",
                         "blocked_requests"}
    assert body["format"] == "png" and body["cached"] is False and body["blocked_requests"] == 0
    assert body["expires_at"].endswith("Z")
    file_response = await service.client.get(_path(body["url"]))
    assert file_response.status == 200
    assert file_response.headers["Content-Type"] == "image/png"
    data = await file_response.read()
    assert len(data) == body["bytes"]
    assert image_of(data).convert("RGB").getpixel((200, 200)) == PAINT_RGB


@pytest.mark.parametrize("headers", [{"Range": "bytes=5-2"}, {"Range": "bytes=abc"}, {"Range": "bytes=999999999-"},
                                     {"If-Match": '"not-this-one"'}, {"If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}])
async def test_a_stored_file_is_served_whole_whatever_range_or_precondition_is_asked(
    service: Service, headers: dict[str, str]
) -> None:
    body = await (await service.shot("/paint")).json()
    file_response = await service.client.get(_path(body["url"]), headers=headers)
    assert file_response.status == 200
    assert file_response.headers["Content-Type"] == "image/png"
    assert len(await file_response.read()) == body["bytes"]


async def test_base64_response_carries_the_image_and_still_stores_it(service: Service) -> None:
    body = await (await service.shot("/paint", response_type="base64")).json()
    data = base64.b64decode(body["image_base64"])
    assert image_of(data).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    stored = await (await service.client.get(_path(body["url"]))).read()
    assert stored == data


async def test_public_url_is_the_base_of_returned_urls(make_service: Any) -> None:
    service = await make_service(server={"public_url": "https://shots.example.com/"})
    body = await (await service.shot("/paint")).json()
    assert body["url"].startswith("https://shots.example.com/v1/files/")


async def test_get_and_post_give_the_same_image(service: Service) -> None:
    get = await service.shot("/paint", width=500, height=400, response_type="image")
    post = await service.client.post(
        "/v1/screenshot",
        json={"url": service.site.url + "/paint", "api_key": service.key, "width": 500, "height": 400,
              "response_type": "image"},
    )
    assert get.status == post.status == 200
    assert image_of(await get.read()).tobytes() == image_of(await post.read()).tobytes()


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "body"])
async def test_key_can_come_from_headers_or_body(service: Service, how: str) -> None:
    body: dict[str, Any] = {"url": service.site.url + "/paint"}
    headers = {}
    if how == "bearer":
        headers["Authorization"] = f"Bearer {service.key}"
    elif how == "x-api-key":
        headers["X-API-Key"] = service.key
    else:
        body["api_key"] = service.key
    response = await service.client.post("/v1/screenshot", json=body, headers=headers)
    assert response.status == 200


async def test_no_cookie_or_storage_survives_into_the_next_capture(service: Service) -> None:
    for _ in range(3):  # each capture would turn the page red if it saw an earlier one's cookie
        response = await service.shot("/cookie", response_type="image")
        assert image_of(await response.read()).convert("RGB").getpixel((50, 50)) == (0, 255, 0)


async def test_dialogs_are_dismissed_and_the_page_is_captured(service: Service) -> None:
    response = await service.shot("/dialogs", response_type="image")
    assert response.status == 200
    assert image_of(await response.read()).convert("RGB").getpixel((50, 50)) == (0, 255, 0)


async def test_popups_are_closed(service: Service) -> None:
    response = await service.shot("/popup", response_type="image")
    assert response.status == 200
    pool = service.client.app[POOL]

    assert await wait_for(lambda: pool.popups_open() == 0, timeout=5)
    assert service.site.log.count("/popup-target") <= 2


async def test_a_download_is_denied_and_reported(service: Service, tmp_path: Any) -> None:
    response = await service.shot("/download")
    # Navigating to an attachment aborts the navigation: nothing to capture, nothing saved.
    assert response.status == 502
    error = (await response.json())["error"]
    assert error["code"] == "target_unreachable" and "download" in error["message"]
    assert not list(tmp_path.rglob("payload.bin"))
    assert (await service.shot("/paint")).status == 200


async def test_infinite_loop_page_times_out_and_the_next_capture_succeeds(service: Service) -> None:
    response = await answered_by(service.shot("/hang", timeout=2), 2)  # a 504 by the deadline, not never
    assert response.status == 504
    body = await response.json()
    assert body["error"]["code"] == "capture_timeout"
    after = await service.shot("/paint", response_type="image")
    assert after.status == 200
    assert image_of(await after.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB


async def test_page_whose_load_never_fires_times_out(service: Service) -> None:
    response = await service.shot("/never-loads", timeout=1)
    assert response.status == 504
    assert (await response.json())["error"]["code"] == "capture_timeout"


async def test_server_deadline_caps_the_request_timeout(make_service: Any) -> None:
    service = await make_service(capture={"deadline_seconds": 2})
    response = await answered_by(service.shot("/hang", timeout=30), 2)  # by the server's 2 s, not the asked 30 s
    assert response.status == 504
    assert (await response.json())["error"]["details"]["deadline_seconds"] == 2


async def test_chromium_crash_fails_in_flight_and_next_request_succeeds(
    make_service: Any, make_pool: Any
) -> None:
    pool = await make_pool(pool_size=1, max_queue=2)
    service = await make_service(pool=pool)
    seen = service.site.log.count("/slow")
    in_flight = asyncio.ensure_future(service.shot("/slow?s=5"))
    assert await wait_for(lambda: service.site.log.count("/slow") > seen, 30)  # Chromium is loading it
    for pid in pool.chromium_pids():
        kill_process_group(pid)
    response = await in_flight
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "browser_unavailable"
    assert "Retry-After" in response.headers
    # Nobody has to do anything: the supervisor relaunches, and the next capture succeeds.
    assert await wait_for(lambda: pool.ready, timeout=30)
    after = await service.shot("/paint", response_type="image")
    assert after.status == 200
    assert image_of(await after.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert pool.stats()["restarts"] >= 1


async def test_full_pool_and_queue_answer_503_overloaded_at_once(make_service: Any, make_pool: Any) -> None:
    pool = await make_pool(pool_size=1, max_queue=1)
    service = await make_service(pool=pool)
    with held_back() as gate:  # the first capture's page answers when the block ends
        first = asyncio.ensure_future(service.shot(f"/slow?gate={gate}"))
        assert await wait_for(lambda: pool.stats()["in_use"] == 1)
        second = asyncio.ensure_future(service.shot("/paint"))
        assert await wait_for(lambda: pool.stats()["waiting"] == 1)
        painted = service.site.log.count("/paint")
        # Refused at once, not after waiting: answered while the place is still taken and the queue
        # still full (the first capture held on its page, the second not yet at the site).
        third = await answered_by(service.shot("/paint"), 0)
        assert not first.done() and not second.done()
        assert pool.stats()["in_use"] == 1 and pool.stats()["waiting"] == 1
        assert service.site.log.count("/paint") == painted
    assert third.status == 503
    assert third.headers["Retry-After"] == "1"
    assert (await third.json())["error"]["code"] == "overloaded"
    assert (await first).status == 200
    assert (await second).status == 200


async def test_recycled_browser_keeps_serving(make_service: Any, make_pool: Any) -> None:
    pool = await make_pool(pool_size=1, recycle_after=2)
    service = await make_service(pool=pool)
    first_pid = pool.chromium_pids()[0]
    for _ in range(4):
        response = await service.shot("/paint", response_type="image")
        assert response.status == 200
    assert await wait_for(lambda: pool.stats()["recycles"] >= 1)
    # the old process is closed once its last lease has ended
    assert await wait_for(lambda: first_pid not in pool.chromium_pids())


async def test_blocked_target_without_allow_entry(make_service: Any) -> None:
    service = await make_service(egress={"allow": []})
    before = service.site.log.count("/paint")
    response = await service.shot("/paint")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "blocked_target"
    assert "127.0.0.1" in error["message"]
    assert service.site.log.count("/paint") == before  # the browser never reached the site


async def test_unreachable_target_is_502(service: Service) -> None:
    response = await service.client.get(
        "/v1/screenshot", params={"url": "http://nonexistent.invalid/", "api_key": service.key}
    )
    assert response.status == 502
    assert (await response.json())["error"]["code"] == "target_unreachable"


def _path(url: str) -> str:
    """The path of an absolute URL the service returned, for the test client."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_a_burst_beyond_slots_and_queue_is_refused_in_full(make_service: Any, make_pool: Any) -> None:
    pool = await make_pool(pool_size=1, max_queue=1)
    service = await make_service(pool=pool)
    responses = await asyncio.gather(*(service.shot("/slow?s=0.5") for _ in range(6)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 503, 503, 503, 503]  # one running, one waiting, the rest at once
    for response in responses:
        if response.status == 503:
            assert (await response.json())["error"]["code"] == "overloaded"
    from screenshot_service.limits.quota import current_period

    assert await service.state.credits_used(service.key_id, current_period().name) == 2
