"""Per-capture resource bounds (Step 13, finding 2): one tenant cannot take the shared Chromium down.

Measured before: a 16384x16384 clip at scale 2 crashed the GPU process (three of them ended the
browser), a selector on a 40000x8000 element took about 6 GB, and the failures cost the sender
nothing.  Now an area over the pixel budget or Chromium's texture limit is a 400 naming the field
before anything is rendered, a page over the memory limit is stopped alone, nothing failed is
charged, and another key's capture at the same time succeeds on the same, never restarted, browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from screenshot_service.browser.errors import BrowserUnavailable
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture import bounds
from screenshot_service.capture.devices import DEVICES
from screenshot_service.capture.options import FORMATS, CaptureOptions
from screenshot_service.errors import InvalidParameter
from screenshot_service.limits.keys import create_key
from tests.conftest import Service, image_of
from tests.site import HUGE_BOTTOM, HUGE_TOP, PAINT_RGB


async def _other_key(service: Service) -> str:
    _, raw = await create_key(service.state, "unlimited", "another tenant")
    return raw


async def _normal_capture(service: Service, key: str) -> None:
    """Another tenant's ordinary capture: it must succeed with the right pixels."""
    response = await service.client.get("/v1/screenshot", params={
        "url": service.site.url + "/paint", "api_key": key, "response_type": "image"})
    assert response.status == 200, await response.text()
    assert image_of(await response.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB


async def _used(service: Service) -> int:
    usage = await service.client.get("/v1/usage", headers=service.auth())
    assert usage.status == 200
    return int((await usage.json())["quota"]["used"])


async def _browser_untouched(service: Service, pool: BrowserPool, pids: list[int]) -> None:
    """Same Chromium processes as before, no restart, and /readyz says the browser is up."""
    assert pool.chromium_pids() == pids and pool.restarts == 0
    ready = await service.client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["browser"] == "up"


async def _refused(response: Any, field: str) -> dict[str, Any]:
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter" and set(error["details"]["fields"]) == {field}, error
    return dict(error)


async def test_an_oversized_clip_is_a_400_naming_clip_and_costs_the_browser_nothing(
    service: Service, shared_pool: BrowserPool
) -> None:
    pids, other = shared_pool.chromium_pids(), await _other_key(service)
    big, _ = await asyncio.gather(
        service.shot("/paint", clip="0,0,16384,16384", device_scale_factor=2), _normal_capture(service, other))
    error = await _refused(big, "clip")
    assert "32768x32768 device px" in error["details"]["fields"]["clip"]
    assert f"wider than 16384 device px and over the budget of {bounds.MAX_PIXELS} px" in error["details"]["fields"]["clip"]
    # A clip within the texture limit but over the budget, in a JSON body this time.
    body = {"url": service.site.url + "/paint", "api_key": service.key, "clip": {"x": 0, "y": 0, "width": 12000,
            "height": 12000}, "device_scale_factor": 1.2}
    await _refused(await service.client.post("/v1/screenshot", json=body), "clip")
    assert await _used(service) == 0
    await _browser_untouched(service, shared_pool, pids)


async def test_an_oversized_element_is_a_400_naming_selector_refunded_while_another_key_captures(
    service: Service, shared_pool: BrowserPool
) -> None:
    pids, other = shared_pool.chromium_pids(), await _other_key(service)
    big, _ = await asyncio.gather(
        service.shot("/huge?w=40000&h=8000", selector="#huge", device_scale_factor=2),
        _normal_capture(service, other))
    error = await _refused(big, "selector")
    why = error["details"]["fields"]["selector"]
    assert "80000x16000 device px" in why and "wider than 16384" in why and "over the budget" in why
    assert await _used(service) == 0  # reserved for the capture, refunded when it failed
    await _browser_untouched(service, shared_pool, pids)


async def test_a_tall_png_element_is_captured_in_strips_and_jpeg_is_refused(service: Service) -> None:
    # 300 x 10000 CSS px at scale 2: 20000 device px tall, beyond one texture; within the budget.
    response = await service.shot("/huge?w=300&h=10000", selector="#huge", device_scale_factor=2,
                                  response_type="image")
    assert response.status == 200, await response.text()
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (600, 20000)
    assert image.getpixel((300, 10)) == HUGE_TOP and image.getpixel((300, 9990)) == HUGE_TOP
    assert image.getpixel((300, 10010)) == HUGE_BOTTOM and image.getpixel((300, 19990)) == HUGE_BOTTOM
    # JPEG has no lossless stitch: the same element cannot be one JPEG.
    why = (await _refused(await service.shot("/huge?w=300&h=10000", selector="#huge", device_scale_factor=2,
                                             format="jpeg"), "selector"))["details"]["fields"]["selector"]
    assert "taller than 16384" in why


async def test_a_tall_png_clip_is_captured_in_strips(service: Service) -> None:
    response = await service.shot("/huge?w=300&h=10000", clip="0,0,200,9000", device_scale_factor=2,
                                  response_type="image")
    assert response.status == 200, await response.text()
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (400, 18000)
    assert image.getpixel((200, 9990)) == HUGE_TOP and image.getpixel((200, 10010)) == HUGE_BOTTOM
    assert image.getpixel((200, 17990)) == HUGE_BOTTOM


def test_every_viewport_the_options_allow_fits_the_budget() -> None:
    # The budget covers the viewport too; the ranges and presets are chosen so that it always fits.
    for fmt in FORMATS:
        CaptureOptions.from_query({"url": "https://e.com", "width": "3840", "height": "2160",
                                   "device_scale_factor": "3", "format": fmt})
        for name in DEVICES:
            CaptureOptions.from_query({"url": "https://e.com", "device": name, "format": fmt})
    assert bounds.area_problem(3840, 2160, 3, "webp") is None
    with pytest.raises(InvalidParameter):
        bounds.check_area("width", 3840, 2160, 8, "png")  # a scale beyond the options' range would not


async def test_a_page_over_the_memory_limit_is_stopped_alone(
    make_service: Callable[..., Any], make_pool: Callable[..., Any]
) -> None:
    pool = await make_pool(pool_size=2, max_page_memory_mb=256)
    service = await make_service(pool=pool)
    pids, other = pool.chromium_pids(), await _other_key(service)
    # The hog allocates ~1.6 GB/s (up to 2 GB); the delay keeps its capture running meanwhile.
    hog, _ = await asyncio.gather(service.shot("/hog", delay=5000), _normal_capture(service, other))
    assert hog.status == 422, await hog.text()
    error = (await hog.json())["error"]
    assert error["code"] == "page_memory_exceeded" and error["details"] == {"limit_mb": 256}
    assert await _used(service) == 0
    await _browser_untouched(service, pool, pids)
    await _normal_capture(service, service.key)  # and the hog's own key captures again at once


async def test_a_crashed_renderer_fails_its_capture_alone(make_pool: Callable[..., Any]) -> None:
    """A renderer that dies (here Page.crash) answers 503 for its capture at once; the browser and
    the capture beside it carry on (a crash used to drop the DevTools connection: every capture)."""
    pool: BrowserPool = await make_pool(pool_size=2)
    pids = pool.chromium_pids()
    async with pool.lease() as doomed, pool.lease() as neighbour:
        crash = asyncio.ensure_future(doomed.page.send("Page.crash"))
        with pytest.raises(BrowserUnavailable, match="renderer crashed"):
            await asyncio.wait_for(doomed.guard(asyncio.sleep(60)), 30)
        crash.cancel()
        assert await neighbour.guard(neighbour.page.evaluate("() => 6 * 7")) == 42
    assert pool.chromium_pids() == pids and pool.restarts == 0 and pool.ready
