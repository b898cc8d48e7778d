"""The API Tester page at /, driven in a real headless Chromium: type, click, see the image.

The browser that plays the user is a private pool whose egress proxy lets
through the test site *and* the app under test; the app captures with the same
pool, so the service can also photograph its own tester page for a visual check.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pyppeteer
import pytest
from pyppeteer.page import Page

from screenshot_service.api.tester import CSP
from screenshot_service.browser.launcher import find_executable
from tests.conftest import Service, image_of
from tests.conftest import TestSite as Site
from tests.test_metrics import start_service

SHOT_PATH = Path("/tmp/tester-page.png")
SHOT_PATH_DARK = Path("/tmp/tester-page-dark.png")


@pytest.fixture
async def user_page() -> AsyncIterator[Page]:
    """A page in the user's own browser: a real Chromium of the test's, not one of the service's."""
    browser = await pyppeteer.launch(
        executablePath=find_executable(), args=["--no-sandbox"], handleSIGINT=False,
        handleSIGTERM=False, handleSIGHUP=False, autoClose=False,
    )
    try:
        yield await browser.newPage()
    finally:
        await browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def running_tester(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, make_pool: Callable[..., Any]
) -> tuple[Service, Any, str]:
    # The port must be known before the pool and settings exist: both must allow it.
    port = free_port()
    allow = [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{port}"]
    pool = await make_pool(allow=allow, pool_size=2, max_queue=4)
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, pool, port=port, egress={"allow": allow})
    return svc, pool, f"http://127.0.0.1:{port}"


async def text_of(page: Page, element_id: str) -> str:
    return str(await page.evaluate(f"document.getElementById({element_id!r}).textContent"))


async def test_page_is_self_contained_with_a_strict_csp(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any
) -> None:
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, shared_pool)
    response = await svc.client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'self' 'unsafe-inline'" in CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    # No external asset of any kind: no CDN, no web font, no remote script or stylesheet.
    for needle in ("<link rel=\"stylesheet\"", "<script src", "@import", "@font-face", "//cdn", "googleapis", "url(http"):
        assert needle not in html, needle
    assert "/v1/screenshot" in html and "response_type" in html


async def test_capture_from_the_page_in_a_real_browser(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, make_pool: Callable[..., Any], user_page: Page
) -> None:
    svc, _, base = await running_tester(aiohttp_client, tmp_path, test_site, make_pool)
    page = user_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    opened = await page.goto(base + "/", waitUntil="load")
    assert opened is not None and opened.status == 200

    await page.type("#url", test_site.url + "/paint")
    await page.type("#key", svc.key)
    await page.click("#width", clickCount=3)
    await page.type("#width", "640")
    curl = await text_of(page, "curl")
    assert base + "/v1/screenshot" in curl and "$API_KEY" in curl and svc.key not in curl
    assert '"width": 640' in curl and '"response_type": "json"' in curl
    await page.click("#include_key")
    assert f"Authorization: Bearer {svc.key}" in await text_of(page, "curl")

    await page.click("#capture")
    await page.waitForFunction("document.body.dataset.state === 'done'", timeout=20000)
    natural = await page.evaluate("[document.getElementById('shot').naturalWidth,"
                                  " document.getElementById('shot').naturalHeight]")
    assert natural == [640, 800]
    assert not await page.evaluate("document.getElementById('shot-link').hidden")
    shown = await text_of(page, "json")
    assert '"format": "png"' in shown
    result = json.loads(shown)
    assert result["width"] == 640 and result["url"].startswith(base + "/v1/files/")
    assert "640 \u00d7 800" in await text_of(page, "facts")  # "640 × 800"

    # A bad key: the error is shown as a card with status and code, and as JSON.
    await page.click("#key", clickCount=3)
    await page.type("#key", "sk_not_a_real_key")
    await page.click("#capture")
    await page.waitForFunction("document.body.dataset.state === 'error'", timeout=20000)
    assert "401 · invalid_api_key" in await text_of(page, "error")
    assert json.loads(await text_of(page, "json"))["error"]["code"] == "invalid_api_key"
    assert await page.evaluate("document.getElementById('shot-link').hidden")

    # Everything the page loaded came from the service itself (no CDN, no fonts).
    assert requested and all(url.startswith(base + "/") or url.startswith("data:") for url in requested), requested


def _self_portrait_js(key: str) -> str:
    """Fill in the key, press Capture and wait for the result: the capture then shows a used page."""
    return (
        "(async () => {"
        f"document.getElementById('key').value = {json.dumps(key)};"
        "document.getElementById('capture').click();"
        "const end = Date.now() + 15000;"
        "while (!['done', 'error'].includes(document.body.dataset.state) && Date.now() < end)"
        "  await new Promise(resolve => setTimeout(resolve, 50));"
        "})()"
    )


async def test_the_service_photographs_its_own_tester_page(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, make_pool: Callable[..., Any]
) -> None:
    svc, _, base = await running_tester(aiohttp_client, tmp_path, test_site, make_pool)
    # The form is prefilled from the page's query string: it captures the tester page itself.
    page_url = f"{base}/?url={base}/&width=1280&height=800"
    for dark, path in ((False, SHOT_PATH), (True, SHOT_PATH_DARK)):
        response = await svc.client.post("/v1/screenshot", headers=svc.auth(), json={
            "url": page_url, "width": 1440, "height": 900, "full_page": True, "dark_mode": dark,
            "js": _self_portrait_js(svc.key), "response_type": "image",
        })
        assert response.status == 200, await response.text()
        data = await response.read()
        path.write_bytes(data)
        image = image_of(data).convert("RGB")
        assert image.width == 1440 and image.height >= 900
        # A used page: the embedded screenshot and the coloured JSON make it far from blank.
        colours = image.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, len(colours)
        background = image.getpixel((5, 5))
        assert isinstance(background, tuple) and (sum(background) < 150) == dark, background  # dark theme follows prefers-color-scheme
