"""The naive baseline: what someone writes alone — launch Chromium, capture, close, per request.

It goes through the service's own launcher and driver (``screenshot_service.browser``)
rather than pyppeteer directly, so pyppeteer stays inside ``browser/``; what it
measures is still the cost of a browser launched per request.
"""

from __future__ import annotations

import base64

from ..browser import launcher
from ..browser.driver import CALL_BOUND
from .floor import screenshot_params
from .spec import CaptureSpec


async def naive_capture(url: str, spec: CaptureSpec, executable: str = "") -> bytes:
    chromium = await launcher.launch(launcher.find_executable(executable))
    try:
        _, page = await chromium.driver.new_context({}, {"width": spec.width, "height": spec.height}, CALL_BOUND)
        await page.goto(url, "load")
        content_height = None
        if spec.full_page:
            metrics = await page.send("Page.getLayoutMetrics")
            content_height = (metrics.get("cssContentSize") or metrics["contentSize"])["height"]
        shot = await page.send("Page.captureScreenshot", screenshot_params(spec, content_height))
        return base64.b64decode(shot["data"])
    finally:
        await chromium.close()
