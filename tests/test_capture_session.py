"""One session per capture: what a capture learns about its page is its own (real Chromium, the test site).

The pool gives every capture a fresh page, so per-page registries could not leak
there; these tests run several captures on ONE leased page and proxy channel,
exactly as the service runs one, so anything kept per page instead of per
session (the prepared flag, network counts, the main document's facts, warnings,
the egress proxy's refusals, a navigation's failure) would show up in the next.
"""

from __future__ import annotations

import asyncio

import pytest

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture import render
from screenshot_service.capture.options import CaptureOptions
from screenshot_service.capture.session import CaptureSession
from screenshot_service.errors import BlockedTarget
from tests import conftest
from tests.conftest import image_of

DARK_OR_LIGHT = ("<title>themed</title><style>html,body{margin:0;background:rgb(255,255,255)}"
                 "@media (prefers-color-scheme: dark){html,body{background:rgb(0,0,0)}}</style>"
                 "<div style='width:100px;height:100px;background:rgb(0,0,200)'></div>")


async def capture_in(session: CaptureSession, opts: CaptureOptions) -> render.Rendered:
    """navigate → capture as the service runs them (navigate prepares the session itself)."""
    deadline = asyncio.get_running_loop().time() + 20
    with session.navigation.judged():
        await render.navigate(session, opts, deadline=deadline)
        await session.navigation.settle()
    with session.navigation.judged():
        rendered = await render.capture(session, opts, deadline=deadline)
        await session.navigation.settle()
    return rendered


async def test_captures_on_one_page_see_only_their_own_findings(
    shared_pool: BrowserPool, test_site: conftest.TestSite
) -> None:
    async with shared_pool.lease() as lease, asyncio.timeout(60):
        assert lease.handle is not None  # the egress proxy's channel: its refusals are on record
        refused_origin = f"http://127.0.0.1:{test_site.port + 1}"  # loopback, not the site's port: refused

        # 1. The main document redirects to a host the egress policy refuses: the capture fails.
        refused = CaptureSession(lease.page, lease.handle)
        with pytest.raises(BlockedTarget):
            await capture_in(refused, CaptureOptions(url=f"{test_site.url}/redirect?to={refused_origin}/"))
        assert refused.blocked_requests == 1

        # 2. One image the proxy refuses, one Chromium's ad list blocks: these two, not the first's.
        reaching = CaptureSession(lease.page, lease.handle)
        html = f"<img src='{refused_origin}/a.png'><img src='http://ad.doubleclick.net/b.png'>"
        rendered = await capture_in(reaching, CaptureOptions(html=html, block_ads=True))
        assert rendered.blocked_requests == 2

        # 3. Two redirects to an error page: its facts and its one warning, nothing of the page before.
        erring = CaptureSession(lease.page, lease.handle)
        rendered = await capture_in(erring, CaptureOptions(url=f"{test_site.url}/hops?n=2&to=/status%3Fcode%3D404"))
        assert rendered.page.status_code == 404 and rendered.page.redirects == 2
        assert [w.code for w in rendered.warnings] == ["http_error"]
        assert erring.blocked_requests == 0 and rendered.blocked_requests == 0

        # 4. Caller HTML in dark mode: prepared again (the emulation applies), no warning carried over.
        themed = CaptureSession(lease.page, lease.handle)
        rendered = await capture_in(themed, CaptureOptions(html=DARK_OR_LIGHT, dark_mode=True))
        image = image_of(rendered.data).convert("RGB")
        assert image.getpixel((50, 50)) == (0, 0, 200) and image.getpixel((400, 400)) == (0, 0, 0)
        assert rendered.warnings == () and rendered.blocked_requests == 0
        assert rendered.page.final_url is None and rendered.page.status_code is None
        assert rendered.page.title == "themed" and rendered.page.redirects == 0

