"""Device presets (the ``device`` option) and the emulation that applies them.

A preset fills in defaults; it never overrides what the caller said.  The
precedence, resolved once in ``CaptureOptions``:

* ``width``, ``height``, ``device_scale_factor``, ``user_agent``: the explicit
  option if given, else the preset's value, else the global default.
* ``mobile`` and ``touch`` come from the preset alone (they are not options):
  ``device=iphone_15&width=500`` is an iPhone-like browser 500 CSS px wide.

Emulation goes through DevTools directly (not ``page.setViewport``) so that
switching to a mobile viewport never triggers a reload of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions

_IOS_17 = (
    "Mozilla/5.0 ({device}; CPU {os} 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
_ANDROID_14 = (
    "Mozilla/5.0 (Linux; Android 14; {model}) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
)
# A plain desktop Chrome: the default headless UA says "HeadlessChrome", which many sites refuse.
_DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


@dataclass(frozen=True)
class Device:
    width: int  # CSS px, portrait for phones and tablets
    height: int
    scale: float  # device pixel ratio
    mobile: bool  # mobile layout: meta viewport honoured, overlay scrollbars
    touch: bool
    user_agent: str


DEVICES: dict[str, Device] = {
    "iphone_15": Device(393, 852, 3, True, True, _IOS_17.format(device="iPhone", os="iPhone OS")),
    "iphone_15_pro_max": Device(430, 932, 3, True, True, _IOS_17.format(device="iPhone", os="iPhone OS")),
    "iphone_se": Device(375, 667, 2, True, True, _IOS_17.format(device="iPhone", os="iPhone OS")),
    "pixel_8": Device(412, 915, 2.625, True, True, _ANDROID_14.format(model="Pixel 8")),
    "galaxy_s24": Device(360, 780, 3, True, True, _ANDROID_14.format(model="SM-S921B")),
    "ipad": Device(820, 1180, 2, True, True, _IOS_17.format(device="iPad", os="OS")),
    "ipad_pro": Device(1024, 1366, 2, True, True, _IOS_17.format(device="iPad", os="OS")),
    "laptop": Device(1366, 768, 1, False, False, _DESKTOP_CHROME),
    "macbook_pro": Device(1512, 982, 2, False, False, _MAC_CHROME),
    "desktop_hd": Device(1920, 1080, 1, False, False, _DESKTOP_CHROME),
    # A 4K monitor at 200 % scaling, as people use one: the image is 3840 x 2160.
    "desktop_4k": Device(1920, 1080, 2, False, False, _DESKTOP_CHROME),
}


async def emulate(page: PageDriver, opts: CaptureOptions) -> None:
    """Viewport, pixel density, mobile layout, touch and user agent, before navigation."""
    device = DEVICES.get(opts.device or "")
    mobile = device.mobile if device else False
    touch = device.touch if device else False
    portrait = opts.height >= opts.width
    metrics: dict[str, object] = {
        "width": opts.width,
        "height": opts.height,
        "deviceScaleFactor": opts.device_scale_factor,
        "mobile": mobile,
        "screenWidth": opts.width,
        "screenHeight": opts.height,
        "screenOrientation": {"type": "portraitPrimary", "angle": 0}
        if portrait
        else {"type": "landscapePrimary", "angle": 90},
    }
    await page.send_state("Emulation.setDeviceMetricsOverride", metrics)
    # Always sent, so a page sees exactly the touch support the preset promises.
    touch_params: dict[str, object] = {"enabled": touch}
    if touch:
        touch_params["maxTouchPoints"] = 5
    await page.send_state("Emulation.setTouchEmulationEnabled", touch_params)
    if opts.user_agent:
        await page.send("Network.setUserAgentOverride", {"userAgent": opts.user_agent})
