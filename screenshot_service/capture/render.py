"""Drive one page: set the viewport, navigate, wait, capture.  Knows no HTTP.

The caller owns the deadline (an ``asyncio.timeout`` around ``render``), so no
call here carries its own timeout: pyppeteer's timeouts are all disabled.
"""

from __future__ import annotations

import asyncio
import base64
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from pyppeteer.errors import PageError
from pyppeteer.page import Page

from ..errors import BlockedTarget, TargetUnreachable
from .options import CaptureOptions

# Chromium's net errors that mean "the target could not be reached".
_UNREACHABLE = (
    "ERR_NAME_NOT_RESOLVED",
    "ERR_NAME_RESOLUTION_FAILED",
    "ERR_CONNECTION_REFUSED",
    "ERR_CONNECTION_RESET",
    "ERR_CONNECTION_CLOSED",
    "ERR_CONNECTION_FAILED",
    "ERR_ADDRESS_UNREACHABLE",
    "ERR_EMPTY_RESPONSE",
    "ERR_SSL_PROTOCOL_ERROR",
    "ERR_CERT_",
    "ERR_INTERNET_DISCONNECTED",
    "ERR_TIMED_OUT",
    "ERR_CONNECTION_TIMED_OUT",
)
# The egress proxy refuses a tunnel or request: the browser reports these.
_BLOCKED = ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_BLOCKED_BY_CLIENT", "ERR_ACCESS_DENIED")


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int  # pixels of the produced image (CSS px × device scale factor)
    height: int
    clamped: bool = False  # full page taller than max_height was cut


async def navigate(page: Page, opts: CaptureOptions) -> None:
    await page.setViewport(
        {"width": opts.width, "height": opts.height, "deviceScaleFactor": opts.device_scale_factor}
    )
    assert opts.url is not None
    try:
        await page.goto(opts.url, waitUntil=opts.wait_until, timeout=0)
    except PageError as exc:
        raise _navigation_error(str(exc), opts.url) from None
    if opts.delay:
        await asyncio.sleep(opts.delay / 1000)


async def capture(page: Page, opts: CaptureOptions) -> Rendered:
    if opts.format == "pdf":
        return await _pdf(page, opts)
    client = page._client
    clip_height = float(opts.height)
    clamped = False
    if opts.full_page:
        metrics = await client.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        full = math.ceil(size["height"])
        clamped = full > opts.max_height
        clip_height = float(max(1, min(full, opts.max_height)))
    params: dict[str, object] = {
        "format": opts.format,
        "fromSurface": True,
        "captureBeyondViewport": opts.full_page,
        "clip": {"x": 0, "y": 0, "width": float(opts.width), "height": clip_height, "scale": 1},
    }
    if opts.format in ("jpeg", "webp"):
        params["quality"] = opts.quality
    result = await client.send("Page.captureScreenshot", params)
    data = base64.b64decode(result["data"])
    scale = opts.device_scale_factor
    return Rendered(
        data=data,
        width=round(opts.width * scale),
        height=round(clip_height * scale),
        clamped=clamped,
    )


async def _pdf(page: Page, opts: CaptureOptions) -> Rendered:
    result = await page._client.send(
        "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}
    )
    return Rendered(data=base64.b64decode(result["data"]), width=opts.width, height=opts.height)


def _navigation_error(message: str, url: str) -> Exception:
    host = urlsplit(url).hostname or "the target"
    if any(code in message for code in _BLOCKED):
        return BlockedTarget(f"the browser was not allowed to reach {host}", details={"host": host})
    if any(code in message for code in _UNREACHABLE):
        reason = message.split(" at ")[0].strip()
        return TargetUnreachable(f"could not reach {host}: {reason}", details={"host": host})
    return TargetUnreachable(f"navigation to {host} failed: {message.split(' at ')[0]}")
