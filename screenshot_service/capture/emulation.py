"""``timezone``, ``locale`` and ``geolocation``: what the page believes about where it runs.

All through DevTools emulation, set before navigation:

* time zone: ``Emulation.setTimezoneOverride`` (``Intl`` and ``Date``);
* locale: ``Emulation.setLocaleOverride`` (``Intl``'s default) plus the user
  agent override's ``acceptLanguage`` (``navigator.language(s)`` and the
  ``Accept-Language`` header of every request);
* geolocation: ``Emulation.setGeolocationOverride``, and the permission granted
  to the target's origin alone, so a redirect or a frame elsewhere is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..browser.driver_errors import ProtocolError
from ..egress.urls import origin_of
from ..errors import InvalidParameter
from . import readback

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions


def accept_language(tag: str) -> str:
    """``de-DE`` -> ``de-DE,de;q=0.9``: the region's form first, then the bare language."""
    language = tag.split("-")[0]
    return tag if language == tag else f"{tag},{language};q=0.9"


async def emulate(page: PageDriver, opts: CaptureOptions) -> None:
    if opts.timezone:
        try:
            await page.send("Emulation.setTimezoneOverride", {"timezoneId": opts.timezone})
        except ProtocolError:
            # The tz database knew the name but this Chromium's ICU does not.
            raise InvalidParameter.fields({"timezone": f"{opts.timezone!r} is not known to the browser"}) from None
    if opts.locale:
        try:
            await page.send("Emulation.setLocaleOverride", {"locale": opts.locale.replace("-", "_")})
        except ProtocolError:
            raise InvalidParameter.fields({"locale": f"{opts.locale!r} is not known to the browser"}) from None
        agent = opts.user_agent or readback.text(await page.evaluate("() => navigator.userAgent"), limit=1024,
                                                 what="navigator.userAgent")
        await page.send("Network.setUserAgentOverride",
                        {"userAgent": agent, "acceptLanguage": accept_language(opts.locale)})
    if opts.geolocation:
        latitude, longitude, accuracy = opts.geolocation
        await page.send("Emulation.setGeolocationOverride",
                        {"latitude": latitude, "longitude": longitude, "accuracy": accuracy})
        if opts.url:
            await page.grant_permissions(origin_of(opts.url) or opts.url, ["geolocation"])
