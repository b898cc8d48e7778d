"""A smoke subset on the full Chromium binary, when it is installed: the suite runs on the
default (the headless shell), and everything must work on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from screenshot_service.appkeys import POOL
from screenshot_service.browser.executable import find_full_chromium, is_headless_shell
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.wiring import stop_browser
from tests import conftest
from tests.conftest import image_of, kill_process_group, start_pool, wait_for
from tests.site import PAINT_RGB

FULL = find_full_chromium()
pytestmark = pytest.mark.skipif(FULL is None, reason="full chromium is not installed")


@pytest.fixture(scope="module")
async def full_pool(test_site: conftest.TestSite) -> AsyncIterator[BrowserPool]:
    """One full-Chromium pool for the module: a launch costs seconds, and the crash test ends
    with the pool relaunched and ready, as the others need it."""
    pool, proxy = await start_pool(test_site, executable=FULL, pool_size=1, max_queue=2)
    yield pool
    await stop_browser(pool, proxy)


@pytest.fixture
async def full_service(make_service: Any, full_pool: BrowserPool) -> Any:
    assert not is_headless_shell(full_pool.executable)
    return await make_service(pool=full_pool)


async def test_full_chromium_paints_the_page(full_service: Any) -> None:
    response = await full_service.shot("/paint", response_type="image")
    assert response.status == 200
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (1280, 800)
    assert image.getpixel((200, 200)) == PAINT_RGB
    assert image.getpixel((20, 20)) == (255, 255, 255)


async def test_full_chromium_full_page_and_jpeg(full_service: Any) -> None:
    response = await full_service.shot("/tall?h=3000", full_page="true", response_type="image")
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (1280, 3000)
    assert image.getpixel((640, 2990)) == (255, 0, 0)
    response = await full_service.shot("/paint", format="jpeg", response_type="image")
    assert image_of(await response.read()).format == "JPEG"


async def test_full_chromium_recovers_from_a_crash(full_service: Any) -> None:
    pool = full_service.client.app[POOL]
    restarts = pool.stats()["restarts"]
    for pid in pool.chromium_pids():
        kill_process_group(pid)
    assert await wait_for(lambda: pool.stats()["restarts"] == restarts + 1 and pool.ready, timeout=60)
    response = await full_service.shot("/paint", response_type="image")
    assert response.status == 200
    assert image_of(await response.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
