"""The naive baseline: what someone writes alone — launch Chromium, capture, close, per request.

Its Chromium is the full ``chromium`` when installed: what such a script gets
(``pyppeteer.launch()`` downloads full Chromium; a distribution's ``chromium``
package is the full browser), and what this service ran on before it chose the
headless shell.  Against the headless shell, a launch-per-request loop is
measured by the cold floor already.

It goes through the service's own launcher and driver (``screenshot_service.browser``)
rather than pyppeteer directly, so pyppeteer stays inside ``browser/``; what it
measures is still the cost of a browser launched per request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time

from ..browser import launcher
from ..browser.driver_errors import CALL_BOUND
from ..browser.executable import find_executable, find_full_chromium
from .floor import screenshot_params
from .spec import CaptureSpec

CLOSE_BOUND = 5.0


def naive_executable(executable: str = "") -> str:
    """``executable`` if given, else the full chromium, else what the service would pick."""
    return find_executable(executable or find_full_chromium() or "")


async def naive_capture(url: str, spec: CaptureSpec, executable: str = "") -> tuple[bytes, float]:
    """The screenshot, and the seconds from launch until the browser process has exited.

    The clock stops there, before the launcher's cleanup waits for the whole process group to
    be gone: orphaned helpers are reaped by PID 1, which on the development VM takes ~1.6 s,
    a cost of the machine that someone writing this alone would not wait for."""
    begin = time.perf_counter()
    chromium = await launcher.launch(naive_executable(executable))
    try:
        _, page = await chromium.driver.new_context({}, CALL_BOUND, lambda page: page.send_state(
            "Emulation.setDeviceMetricsOverride",
            {"width": spec.width, "height": spec.height, "deviceScaleFactor": 1, "mobile": False}))
        await page.goto(url, "load")
        content_height = None
        if spec.full_page:
            metrics = await page.send("Page.getLayoutMetrics")
            content_height = (metrics.get("cssContentSize") or metrics["contentSize"])["height"]
        shot = await page.send("Page.captureScreenshot", screenshot_params(spec, content_height))
        await chromium.driver.close(CLOSE_BOUND)  # Browser.close, as pyppeteer's browser.close() does
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chromium.process.wait(), CLOSE_BOUND)
        return base64.b64decode(shot["data"]), time.perf_counter() - begin
    finally:
        await chromium.close()  # whatever is left, and the profile
