"""The naive baseline: what someone writes alone — launch Chromium, capture, close, per request."""

from __future__ import annotations

import pyppeteer

from ..browser import launcher
from .spec import CaptureSpec

NAIVE_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--no-first-run",
]


async def naive_capture(url: str, spec: CaptureSpec, executable: str = "") -> bytes:
    browser = await pyppeteer.launch(
        executablePath=launcher.find_executable(executable),
        args=NAIVE_ARGS,
        headless=False,  # "--headless=new" is in args; pyppeteer's own flag means the old mode
        handleSIGINT=False,
        handleSIGTERM=False,
        handleSIGHUP=False,
        logLevel=40,
    )
    try:
        page = await browser.newPage()
        await page.setViewport({"width": spec.width, "height": spec.height})
        await page.goto(url, waitUntil="load")
        data = await page.screenshot(type="png", fullPage=spec.full_page)
        assert isinstance(data, bytes)
        return data
    finally:
        await browser.close()
