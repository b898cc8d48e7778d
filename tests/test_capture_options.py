"""Every capture option of SPEC §3, end to end on real Chromium, proven by pixels.

These tests run their own test site (tests/options_site.py) and their own warm
pool, whose egress proxy lets that site through and resolves a few ad/tracker
and third-party names to it (``StaticResolver``): a request the browser makes
to ``ad.doubleclick.net`` would really arrive, so "it never arrived" means it
was blocked.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from screenshot_service import config
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture import blocking, fullpage, render
from screenshot_service.capture.devices import DEVICES
from screenshot_service.capture.options import CaptureOptions
from screenshot_service.capture.session import CaptureSession
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from screenshot_service.errors import InvalidParameter
from screenshot_service.wiring import start_browser, stop_browser
from tests import options_site as site
from tests.conftest import image_of

MAPPED_HOSTS = ("ad.doubleclick.net", "sb.scorecardresearch.com", "thirdparty.test")


@dataclass
class OptionsSite:
    url: str
    port: int
    record: site.Record


@pytest.fixture(scope="module")
async def options_site() -> AsyncIterator[OptionsSite]:
    record = site.Record()
    runner = web.AppRunner(site.build(record), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield OptionsSite(url=f"http://127.0.0.1:{port}", port=port, record=record)
    await runner.cleanup()


@pytest.fixture(scope="module")
async def options_pool(options_site: OptionsSite) -> AsyncIterator[BrowserPool]:
    policy = EgressPolicy.from_config(config.EgressConfig(allow=[f"127.0.0.1:{options_site.port}"]))
    pool, proxy = await start_browser(config.BrowserConfig(pool_size=2, max_queue=8), policy, mapped_resolver())
    yield pool
    await stop_browser(pool, proxy)


@dataclass
class Api:
    client: Any
    key: str
    site: OptionsSite

    async def get(self, path: str, **params: Any) -> Any:
        query = {"url": self.site.url + path, "api_key": self.key, **{k: str(v) for k, v in params.items()}}
        return await self.client.get("/v1/screenshot", params=query)

    async def post(self, body: dict[str, Any]) -> Any:
        return await self.client.post("/v1/screenshot", json={"api_key": self.key, **body})

    async def bytes(self, path: str, **params: Any) -> bytes:
        response = await self.get(path, response_type="image", **params)
        assert response.status == 200, await response.text()
        return bytes(await response.read())

    async def image(self, path: str, **params: Any) -> Image.Image:
        return image_of(await self.bytes(path, **params))


def mapped_resolver() -> StaticResolver:
    return StaticResolver({host: "127.0.0.1" for host in MAPPED_HOSTS}, fallback=SystemResolver())


@pytest.fixture
async def api(make_service: Any, options_pool: BrowserPool, options_site: OptionsSite) -> Api:
    service = await make_service(
        pool=options_pool, egress={"allow": [f"127.0.0.1:{options_site.port}"]}, resolver=mapped_resolver()
    )
    return Api(service.client, service.key, options_site)


async def render_direct(pool: BrowserPool, opts: CaptureOptions) -> render.Rendered:
    """prepare → navigate → capture on a leased page, without the HTTP layer."""
    async with pool.lease() as lease, asyncio.timeout(25):
        session = CaptureSession(lease.page, lease.handle)
        await render.prepare(session, opts)
        await render.navigate(session, opts)
        return await render.capture(session, opts, deadline=asyncio.get_running_loop().time() + 20)


def rgb(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    pixel = image.getpixel((x, y)) if image.mode == "RGB" else image.convert("RGB").getpixel((x, y))
    return pixel  # type: ignore[return-value]


def alpha(image: Image.Image, x: int, y: int) -> int:
    return image.convert("RGBA").getpixel((x, y))[3]  # type: ignore[index]


# -- area: selector, clip, device, scale --------------------------------------------------------


async def test_selector_captures_just_the_element(api: Api) -> None:
    image = await api.image("/box", selector="#el")
    assert image.size == site.ELEMENT[2:]
    for x, y in ((1, 1), (120, 65), (238, 128)):
        assert rgb(image, x, y) == site.ELEMENT_RGB


async def test_selector_not_found_is_400(api: Api) -> None:
    response = await api.get("/box", selector="#missing")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "selector_not_found" and "#missing" in error["message"]


async def test_invalid_selector_is_400_naming_the_field(api: Api) -> None:
    response = await api.get("/box", selector="div[")
    assert response.status == 400
    assert list((await response.json())["error"]["details"]["fields"]) == ["selector"]


async def test_clip_has_the_clips_size(api: Api) -> None:
    x, y, w, h = site.ELEMENT
    image = await api.image("/box", clip=f"{x},{y},{w},{h}")
    assert image.size == (w, h)
    assert rgb(image, 0, 0) == rgb(image, w - 1, h - 1) == site.ELEMENT_RGB
    response = await api.post({"url": api.site.url + "/box", "clip": {"x": 0, "y": 0, "width": 321, "height": 123},
                               "response_type": "image"})
    assert image_of(await response.read()).size == (321, 123)


async def test_device_preset_gives_a_portrait_mobile_image_at_its_scale(api: Api) -> None:
    preset = DEVICES["iphone_15"]
    image = await api.image("/device", device="iphone_15")
    assert image.size == (round(preset.width * preset.scale), round(preset.height * preset.scale))
    assert image.size[1] > image.size[0]
    for stripe in range(3):  # iPhone user agent, touch, phone-sized viewport
        assert rgb(image, 50, int((stripe * 100 + 50) * preset.scale)) == site.GREEN, f"stripe {stripe}"


async def test_explicit_width_wins_over_the_preset(api: Api) -> None:
    image = await api.image("/device", device="iphone_15", width=500)
    assert image.size == (1500, 852 * 3)
    assert rgb(image, 50, 450) == site.GREEN  # still a touch device


async def test_desktop_preset_has_no_touch(api: Api) -> None:
    image = await api.image("/device", device="desktop_hd")
    assert image.size == (1920, 1080)
    assert rgb(image, 50, 150) == site.RED  # no touch


# -- page look: media, hiding, css, js ------------------------------------------------------------


async def test_dark_mode_flips_prefers_color_scheme(api: Api) -> None:
    assert rgb(await api.image("/scheme"), 500, 500) == site.LIGHT_RGB
    assert rgb(await api.image("/scheme", dark_mode="true"), 500, 500) == site.DARK_RGB


async def test_reduced_motion_is_emulated(api: Api) -> None:
    assert rgb(await api.image("/scheme"), 50, 50) == site.MOTION_RGB
    assert rgb(await api.image("/scheme", reduced_motion="1"), 50, 50) == site.STILL_RGB


async def test_hidden_selectors_disappear(api: Api) -> None:
    before = await api.image("/box")
    assert rgb(before, 100, 100) == site.ELEMENT_RGB and rgb(before, 450, 100) == site.AD_RGB
    after = await api.image("/box", hide_selectors="#el,.ad")
    assert rgb(after, 100, 100) == rgb(after, 450, 100) == (255, 255, 255)


async def test_injected_css_and_js_take_effect(api: Api) -> None:
    css = await api.image("/box", css="body { background: rgb(1, 2, 3) !important }")
    assert rgb(css, 5, 5) == (1, 2, 3)
    js = await api.image("/box", js="document.getElementById('el').style.background = 'rgb(4, 5, 6)'")
    assert rgb(js, 100, 100) == (4, 5, 6)


async def test_css_and_js_apply_despite_a_strict_csp(api: Api) -> None:
    image = await api.image("/csp", css="html { background: rgb(7, 8, 9) !important }",
                            js="document.documentElement.style.outline = '0'; 42")
    assert rgb(image, 500, 500) == (7, 8, 9)


async def test_js_error_is_400_with_the_message(api: Api) -> None:
    response = await api.get("/box", js="notDefinedAnywhere()")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert "notDefinedAnywhere" in error["details"]["fields"]["js"]


async def test_cookie_banners_are_accepted_and_hidden(api: Api) -> None:
    before = await api.image("/consent")
    assert rgb(before, 640, 700) == site.RED and rgb(before, 100, 350) == (255, 140, 0)
    after = await api.image("/consent", block_cookie_banners="true")
    assert rgb(after, 50, 50) == site.GREEN  # the accept button was clicked
    assert rgb(after, 640, 700) == rgb(after, 100, 350) == (255, 255, 255)  # both banners gone


# -- waiting ---------------------------------------------------------------------------------------------


async def test_wait_for_selector_waits_until_visible(api: Api) -> None:
    assert rgb(await api.image("/late"), 50, 50) == (255, 255, 255)
    assert rgb(await api.image("/late", wait_for_selector="#ready"), 50, 50) == site.GREEN


async def test_delay_waits_before_capture(api: Api) -> None:
    assert rgb(await api.image("/late", delay=1200), 50, 50) == site.GREEN


@pytest.mark.parametrize("wait_until", ["domcontentloaded", "networkidle0", "networkidle2"])
async def test_wait_until_variants_render(api: Api, wait_until: str) -> None:
    assert rgb(await api.image("/box", wait_until=wait_until), 100, 100) == site.ELEMENT_RGB


# -- formats ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "webp"])
async def test_omit_background_gives_transparent_pixels(api: Api, fmt: str) -> None:
    image = await api.image("/transparent", format=fmt, omit_background="true")
    assert alpha(image, 600, 600) == 0  # an empty spot
    assert alpha(image, 50, 50) == 255  # the box stays opaque
    assert alpha(await api.image("/transparent", format=fmt), 600, 600) == 255


async def test_pdf_is_a_pdf(api: Api) -> None:
    response = await api.get("/box", format="pdf", response_type="image")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert (await response.read()).startswith(b"%PDF")


async def test_jpeg_quality_changes_the_bytes(api: Api) -> None:
    gradient = "body { background: linear-gradient(90deg, rgb(255, 0, 0), rgb(0, 0, 255)) !important }"
    low = await api.bytes("/box", format="jpeg", quality=5, css=gradient)
    high = await api.bytes("/box", format="jpeg", quality=95, css=gradient)
    assert image_of(low).format == image_of(high).format == "JPEG"
    assert len(low) < len(high)


# -- html input ----------------------------------------------------------------------------------------------

PAGE_HTML = (
    "<body style='margin:0'><div style='width:120px;height:80px;background:rgb(9,99,199)'></div>"
    "<img src='{site}/img/0-200-0.png?delay=200' style='position:absolute;left:200px;top:0'></body>"
)


async def test_html_input_renders(options_pool: BrowserPool, options_site: OptionsSite) -> None:
    opts = CaptureOptions.from_json({"html": PAGE_HTML.format(site=options_site.url), "width": 640,
                                     "height": 480, "wait_until": "networkidle0"})
    rendered = await render_direct(options_pool, opts)
    image = image_of(rendered.data)
    assert image.size == (640, 480) and (rendered.width, rendered.height) == (640, 480)
    assert rgb(image, 60, 40) == (9, 99, 199)
    assert rgb(image, 300, 100) == site.GREEN  # its subresource loaded (through the egress proxy)


async def test_html_input_over_post(api: Api) -> None:
    response = await api.post({"html": PAGE_HTML.format(site=api.site.url), "response_type": "image"})
    assert response.status == 200
    assert rgb(image_of(await response.read()), 60, 40) == (9, 99, 199)


async def test_html_in_a_query_string_is_400(api: Api) -> None:
    response = await api.client.get("/v1/screenshot", params={"html": "<p>hi</p>", "api_key": api.key})
    assert response.status == 400
    assert "html" in (await response.json())["error"]["details"]["fields"]


# -- identity sent to the target ----------------------------------------------------------------------------


async def test_user_agent_headers_and_cookies_reach_the_target(api: Api) -> None:
    response = await api.get(
        "/echo",
        user_agent="OptionsTest/1.0",
        headers='{"X-Test-Header": "hello"}',
        cookies='[{"name": "session", "value": "abc123"}, {"name": "theme", "value": "dark", "path": "/"}]',
    )
    assert response.status == 200
    seen = api.site.record.last("/echo")
    assert seen.headers["User-Agent"] == "OptionsTest/1.0"
    assert seen.headers["X-Test-Header"] == "hello"
    assert seen.cookies == {"session": "abc123", "theme": "dark"}
    third_party = [s for s in api.site.record.requests if s.host.startswith("thirdparty.test")]
    assert third_party and third_party[-1].cookies == {}  # cookies belong to the target's host only


async def test_device_preset_sends_its_user_agent(api: Api) -> None:
    await api.get("/echo", device="pixel_8")
    assert "Pixel 8" in api.site.record.last("/echo").headers["User-Agent"]


# -- blocking ------------------------------------------------------------------------------------------------


async def test_ads_and_trackers_load_without_blocking(api: Api) -> None:
    """The control: these hosts really are requested and really arrive (mapped to the site)."""
    api.site.record.requests.clear()
    assert (await api.get("/ads")).status == 200
    assert {"ad.doubleclick.net", "sb.scorecardresearch.com"} <= set(api.site.record.hosts())


async def test_blocked_ads_and_trackers_never_reach_the_network(api: Api) -> None:
    api.site.record.requests.clear()
    image = await api.image("/ads", block_ads="true", block_trackers="true")
    assert rgb(image, 50, 80) == site.GREEN  # the page itself rendered
    hosts = set(api.site.record.hosts())
    assert "127.0.0.1" in hosts
    assert not hosts & {"ad.doubleclick.net", "sb.scorecardresearch.com"}


async def test_only_the_chosen_list_is_blocked(api: Api) -> None:
    api.site.record.requests.clear()
    await api.get("/ads", block_trackers="true")
    hosts = set(api.site.record.hosts())
    assert "ad.doubleclick.net" in hosts and "sb.scorecardresearch.com" not in hosts


async def test_block_resources_reach_a_cross_site_frame(api: Api) -> None:
    """A third party's frame (its own renderer, where the browser isolates sites) is blocked as the page is."""
    api.site.record.requests.clear()
    html = f"<iframe src='http://thirdparty.test:{api.site.port}/ads'></iframe>"
    response = await api.post({"html": html, "wait_until": "networkidle0", "block_resources": ["image"]})
    body = await response.json()
    assert response.status == 200, body
    assert api.site.record.hosts() == ["thirdparty.test"] and body["blocked_requests"] == 3


async def test_page_level_blocking_counts_what_chromium_refused(
    options_pool: BrowserPool, options_site: OptionsSite
) -> None:
    opts = CaptureOptions.from_query({"url": options_site.url + "/ads", "block_ads": "1", "block_trackers": "1"})
    rendered = await render_direct(options_pool, opts)
    assert rendered.blocked_requests == 2


async def test_a_page_on_a_blocked_host_is_400_blocked_target(api: Api) -> None:
    api.site.record.requests.clear()
    url = f"http://ad.doubleclick.net:{api.site.port}/ad.png"
    response = await api.client.get("/v1/screenshot", params={"url": url, "api_key": api.key, "block_ads": "1"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "blocked_target"
    assert "ad.doubleclick.net" not in api.site.record.hosts()


def test_host_blocker_matches_hosts_and_parent_domains() -> None:
    both = blocking.host_blocker(CaptureOptions(url="http://x", block_ads=True, block_trackers=True))
    assert both is not None
    for host in ("doubleclick.net", "ad.doubleclick.net", "A.B.DoubleClick.NET.", "www.google-analytics.com"):
        assert both(host), host
    for host in ("notdoubleclick.net", "doubleclick.net.example.com", "example.com", "127.0.0.1", ""):
        assert not both(host), host
    ads_only = blocking.host_blocker(CaptureOptions(url="http://x", block_ads=True))
    assert ads_only is not None and ads_only("doubleclick.net") and not ads_only("google-analytics.com")
    assert blocking.host_blocker(CaptureOptions(url="http://x")) is None


def test_bundled_lists_are_shipped_and_sizeable() -> None:
    assert len(blocking.domains("ads")) >= 200 and len(blocking.domains("trackers")) >= 100
    assert all("." in d and " " not in d for d in blocking.domains("ads") | blocking.domains("trackers"))
    assert "#onetrust-banner-sdk" in blocking.cookie_banner_css()
    assert "#onetrust-accept-btn-handler" in blocking.cookie_accept_selectors()


# -- full page -------------------------------------------------------------------------------------------------


async def test_full_page_reveals_lazy_images(api: Api) -> None:
    image = await api.image("/lazy", full_page="true")
    assert image.size == (1280, site.LAZY_HEIGHT)
    for top, colour in [*site.LAZY_IMAGES, site.LAZY_NATIVE, site.LAZY_BLOCK]:
        assert rgb(image, 200, top + 100) == colour, f"image at {top}"
    assert rgb(image, 640, 20) == (255, 255, 255)  # and the shot starts at the top again


@pytest.mark.slow
async def test_30000px_page_comes_back_whole_without_repeated_or_blank_tiles(api: Api) -> None:
    image = (await api.image("/bands?n=30", full_page="true", max_height=30000)).convert("RGB")
    assert image.size == (1280, 30000)
    rows = fullpage._tile_css_rows(1280, 1)
    assert rows < 30000  # the page really was captured in strips
    for band in range(30):
        assert rgb(image, 640, band * 1000 + 500) == site.band_rgb(band), f"band {band}"
    assert rgb(image, 640, 20) == site.HEADER_RGB  # the fixed header, once, at the top
    for seam in range(rows, 30000, rows):
        for y in (seam - 3, seam + 3, seam + 20):  # strips abut exactly; no header repeated at a seam
            assert rgb(image, 640, y) == site.band_rgb(y // 1000), f"row {y}"


async def test_tall_jpeg_is_clamped_at_the_single_shot_limit(api: Api) -> None:
    response = await api.get("/bands?n=20", full_page="true", max_height=20000, format="jpeg")
    body = await response.json()
    assert body["height"] == fullpage.SINGLE_LIMIT and body["clamped"] is True


# -- PNG stitching ------------------------------------------------------------------------------------------------


def _png_with_filter(pixels: bytes, width: int, height: int, first_filter: int) -> bytes:
    """An RGB PNG whose first row uses ``first_filter`` (against the implicit zero row); others None."""
    stride = width * 3
    rows = [pixels[i * stride:(i + 1) * stride] for i in range(height)]
    first = bytearray(rows[0])
    if first_filter == 1 or first_filter == 4:  # Sub, and Paeth against zeros
        first = bytearray((rows[0][i] - (rows[0][i - 3] if i >= 3 else 0)) & 0xFF for i in range(stride))
    elif first_filter == 3:  # Average against zeros
        first = bytearray((rows[0][i] - ((rows[0][i - 3] if i >= 3 else 0) >> 1)) & 0xFF for i in range(stride))
    raw = bytes([first_filter]) + bytes(first) + b"".join(b"\x00" + row for row in rows[1:])

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_stitch_png_handles_every_first_row_filter() -> None:
    width, height = 7, 3
    strips, expected = [], Image.new("RGB", (width, height * 5))
    for index, first_filter in enumerate(range(5)):
        pixels = bytes((index * 50 + i * 13) % 256 for i in range(width * height * 3))
        strips.append(_png_with_filter(pixels, width, height, first_filter))
        expected.paste(Image.frombytes("RGB", (width, height), pixels), (0, index * height))
        assert Image.open(io.BytesIO(strips[-1])).tobytes() == pixels  # the strip itself is valid
    stitched = image_of(fullpage.stitch_png(strips))
    assert stitched.size == (width, height * 5)
    assert stitched.tobytes() == expected.tobytes()


def test_stitch_png_refuses_mismatched_strips() -> None:
    a = _png_with_filter(bytes(7 * 3 * 3), 7, 3, 0)
    b = _png_with_filter(bytes(8 * 3 * 3), 8, 3, 0)
    with pytest.raises(ValueError):
        fullpage.stitch_png([a, b])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_image_size_reads_headers(fmt: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (123, 45), (1, 2, 3)).save(out, fmt)
    assert fullpage.image_size(out.getvalue()) == (123, 45)


# -- options: parsing, defaults, validation -------------------------------------------------------------------


def test_defaults_follow_the_spec() -> None:
    opts = CaptureOptions.from_query({"url": "https://example.com"})
    assert (opts.width, opts.height, opts.device_scale_factor, opts.format, opts.quality) == (1280, 800, 1, "png", 80)
    assert (opts.max_height, opts.wait_until, opts.delay, opts.timeout, opts.response_type) == (
        16384, "load", 0, 30, "json")
    assert not any((opts.full_page, opts.omit_background, opts.block_ads, opts.block_trackers,
                    opts.block_cookie_banners, opts.dark_mode, opts.reduced_motion, opts.cache))
    assert opts.hide_selectors == () and opts.headers == () and opts.cookies == ()


def test_query_and_json_forms_agree() -> None:
    query = CaptureOptions.from_query({
        "url": "https://example.com", "clip": "1,2,300,400", "hide_selectors": "#a, :is(.b, .c),[title='x,y']",
        "headers": '{"X-A": "1"}', "cookies": '[{"name": "n", "value": "v"}]', "full_page": "0",
        "dark_mode": "true",
    })
    body = CaptureOptions.from_json({
        "url": "https://example.com", "clip": {"x": 1, "y": 2, "width": 300, "height": 400},
        "hide_selectors": ["#a", ":is(.b, .c)", "[title='x,y']"], "headers": {"X-A": "1"},
        "cookies": [{"name": "n", "value": "v"}], "full_page": False, "dark_mode": True,
    })
    assert query == body
    assert query.hide_selectors == ("#a", ":is(.b, .c)", "[title='x,y']")


def test_device_preset_precedence() -> None:
    preset = CaptureOptions.from_query({"url": "https://e.com", "device": "pixel_8"})
    assert (preset.width, preset.height, preset.device_scale_factor) == (412, 915, 2.625)
    assert "Pixel 8" in (preset.user_agent or "")
    mixed = CaptureOptions.from_query({"url": "https://e.com", "device": "pixel_8", "height": "600",
                                       "user_agent": "Mine"})
    assert (mixed.width, mixed.height, mixed.user_agent) == (412, 600, "Mine")


def test_cache_fingerprint_covers_what_shapes_the_image() -> None:
    base = CaptureOptions.from_json({"url": "https://e.com", "headers": {"X-A": "1", "X-B": "2"}})
    same = CaptureOptions.from_json({"url": "https://e.com", "headers": {"x-b": "2", "x-a": "1"}, "timeout": 9,
                                     "response_type": "image", "cache": True, "cache_ttl": 60, "media_type": "screen"})
    assert base.cache_fingerprint() == same.cache_fingerprint()
    assert len(base.cache_fingerprint()) == 64
    for change in ({"width": 1000}, {"dark_mode": True}, {"format": "jpeg"}, {"url": "https://e.com/2"},
                   {"css": "p{}"}, {"headers": {"X-A": "2"}}, {"media_type": "print"}):
        other = CaptureOptions.from_json({"url": "https://e.com", "headers": {"X-A": "1", "X-B": "2"}, **change})
        assert other.cache_fingerprint() != base.cache_fingerprint(), change


INVALID_QUERY: list[tuple[dict[str, str], set[str]]] = [
    ({}, {"url"}),
    ({"url": "https://e.com", "nope": "1"}, {"nope"}),
    ({"url": "https://e.com", "html": "<p>x</p>"}, {"html"}),
    ({"url": "https://e.com", "s3": "{}"}, {"s3"}),
    ({"url": "https://e.com", "width": "99"}, {"width"}),
    ({"url": "https://e.com", "width": "3841"}, {"width"}),
    ({"url": "https://e.com", "height": "2161"}, {"height"}),
    ({"url": "https://e.com", "height": "tall"}, {"height"}),
    ({"url": "https://e.com", "device_scale_factor": "3.5"}, {"device_scale_factor"}),
    ({"url": "https://e.com", "device_scale_factor": "nan"}, {"device_scale_factor"}),
    ({"url": "https://e.com", "device": "nokia_3310"}, {"device"}),
    ({"url": "https://e.com", "full_page": "yes"}, {"full_page"}),
    ({"url": "https://e.com", "max_height": "65537"}, {"max_height"}),
    ({"url": "https://e.com", "selector": " "}, {"selector"}),
    ({"url": "https://e.com", "clip": "1,2,3"}, {"clip"}),
    ({"url": "https://e.com", "clip": "0,0,0,10"}, {"clip"}),
    ({"url": "https://e.com", "clip": "-1,0,10,10"}, {"clip"}),
    ({"url": "https://e.com", "format": "gif"}, {"format"}),
    ({"url": "https://e.com", "quality": "0"}, {"quality"}),
    ({"url": "https://e.com", "quality": "101"}, {"quality"}),
    ({"url": "https://e.com", "omit_background": "maybe"}, {"omit_background"}),
    ({"url": "https://e.com", "wait_until": "idle"}, {"wait_until"}),
    ({"url": "https://e.com", "wait_for_selector": ""}, {"wait_for_selector"}),
    ({"url": "https://e.com", "delay": "10001"}, {"delay"}),
    ({"url": "https://e.com", "delay": "-1"}, {"delay"}),
    ({"url": "https://e.com", "timeout": "31"}, {"timeout"}),
    ({"url": "https://e.com", "timeout": "0"}, {"timeout"}),
    ({"url": "https://e.com", "block_ads": "2"}, {"block_ads"}),
    ({"url": "https://e.com", "block_trackers": "on"}, {"block_trackers"}),
    ({"url": "https://e.com", "block_cookie_banners": "x"}, {"block_cookie_banners"}),
    ({"url": "https://e.com", "dark_mode": "dark"}, {"dark_mode"}),
    ({"url": "https://e.com", "reduced_motion": "y"}, {"reduced_motion"}),
    ({"url": "https://e.com", "user_agent": "a\r\nX-Injected: 1"}, {"user_agent"}),
    ({"url": "https://e.com", "headers": "not json"}, {"headers"}),
    ({"url": "https://e.com", "headers": '["X-A"]'}, {"headers"}),
    ({"url": "https://e.com", "headers": '{"Bad Name": "1"}'}, {"headers"}),
    ({"url": "https://e.com", "headers": '{"Host": "evil"}'}, {"headers"}),
    ({"url": "https://e.com", "headers": '{"Proxy-Authorization": "x"}'}, {"headers"}),
    ({"url": "https://e.com", "headers": '{"X-A": "1\\r\\nX-B: 2"}'}, {"headers"}),
    ({"url": "https://e.com", "cookies": '{"name": "a"}'}, {"cookies"}),
    ({"url": "https://e.com", "cookies": '[{"name": "a"}]'}, {"cookies"}),
    ({"url": "https://e.com", "cookies": '[{"name": "a", "value": "b", "domain": "evil.com"}]'}, {"cookies"}),
    ({"url": "https://e.com", "cookies": '[{"name": "a", "value": "b;c"}]'}, {"cookies"}),
    ({"url": "https://e.com", "cookies": '[{"name": "a", "value": "b", "same_site": "Sometimes"}]'}, {"cookies"}),
    ({"url": "https://e.com", "cache": "sometimes"}, {"cache"}),
    ({"url": "https://e.com", "cache_ttl": "2592001"}, {"cache_ttl"}),
    ({"url": "https://e.com", "cache_ttl": "0"}, {"cache_ttl"}),
    ({"url": "https://e.com", "response_type": "xml"}, {"response_type"}),
    ({"url": "https://e.com", "webhook_url": "https://hooks.example.com/x"}, {"webhook_url"}),  # jobs only
    ({"url": "https://e.com", "media_type": "tv"}, {"media_type"}),
    # combinations: both names reported
    ({"url": "https://e.com", "selector": "#a", "clip": "0,0,10,10"}, {"selector", "clip"}),
    ({"url": "https://e.com", "selector": "#a", "full_page": "true"}, {"selector", "full_page"}),
    ({"url": "https://e.com", "clip": "0,0,10,10", "full_page": "true"}, {"clip", "full_page"}),
    ({"url": "https://e.com", "omit_background": "true", "format": "jpeg"}, {"omit_background", "format"}),
    ({"url": "https://e.com", "omit_background": "true", "format": "pdf"}, {"omit_background", "format"}),
    ({"url": "https://e.com", "selector": "#a", "format": "pdf"}, {"selector", "format"}),
]


@pytest.mark.parametrize(("query", "fields"), INVALID_QUERY, ids=lambda v: ",".join(sorted(v)) if isinstance(v, set) else None)
def test_each_invalid_query_is_rejected_naming_its_fields(query: dict[str, str], fields: set[str]) -> None:
    with pytest.raises(InvalidParameter) as caught:
        CaptureOptions.from_query(query)
    assert set(caught.value.details["fields"]) == fields
    for name in fields:
        assert name in caught.value.message


INVALID_BODY: list[tuple[dict[str, Any], set[str]]] = [
    ({"html": "<p>x</p>", "url": "https://e.com"}, {"html", "url"}),
    ({"html": "x" * (2 * 1024 * 1024 + 1)}, {"html"}),
    ({"html": 5}, {"html"}),
    ({"url": "https://e.com", "webhook_url": "https://hooks.example.com/x"}, {"webhook_url"}),  # jobs only
    ({"url": "https://e.com", "media_type": 1}, {"media_type"}),
    ({"html": "<p>x</p>", "cookies": [{"name": "a", "value": "b"}]}, {"html", "cookies"}),
    ({"url": "https://e.com", "clip": {"x": 0, "y": 0, "width": 10}}, {"clip"}),
    ({"url": "https://e.com", "hide_selectors": [1]}, {"hide_selectors"}),
    ({"url": "https://e.com", "headers": {"X-A": 1}}, {"headers"}),
    ({"url": "https://e.com", "cookies": [{"name": "a", "value": "b", "secure": "maybe"}]}, {"cookies"}),
    ({"url": "https://e.com", "width": 1280.5}, {"width"}),
    ({"url": "https://e.com", "full_page": "true", "selector": "#a"}, {"full_page", "selector"}),
    ({"url": "https://e.com", "s3": {"bucket": "my-bucket"}}, {"s3.region", "s3.access_key_id", "s3.secret_access_key"}),
    ({"url": "https://e.com", "s3": "bucket"}, {"s3"}),
]


@pytest.mark.parametrize(("body", "fields"), INVALID_BODY, ids=lambda v: ",".join(sorted(v)) if isinstance(v, set) else None)
def test_each_invalid_body_is_rejected_naming_its_fields(body: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(InvalidParameter) as caught:
        CaptureOptions.from_json(body)
    assert set(caught.value.details["fields"]) == fields


def test_valid_body_with_every_option() -> None:
    opts = CaptureOptions.from_json({
        "html": "<p>hi</p>", "device": "ipad", "format": "webp", "quality": 50, "omit_background": True,
        "wait_until": "networkidle2", "wait_for_selector": "p", "delay": 10, "timeout": 10,
        "hide_selectors": [".x"], "css": "p{}", "js": "1", "block_ads": True, "block_trackers": True,
        "block_cookie_banners": True, "dark_mode": True, "reduced_motion": True, "user_agent": "UA",
        "headers": {"X-A": "1"}, "headers_scope": "all", "cache": True, "cache_ttl": 3600, "response_type": "base64",
        "media_type": "print", "max_height": 20000, "full_page": True,
        "s3": {"bucket": "my-bucket", "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "topsecretvalue"},
    })
    assert opts.html == "<p>hi</p>" and opts.width == 820 and opts.user_agent == "UA" and opts.headers_scope == "all"
    assert opts.css_media == "print"
    assert opts.s3 is not None and opts.s3.bucket == "my-bucket"
    assert "topsecretvalue" not in repr(opts) and "AKIAEXAMPLE" not in repr(opts)


async def test_invalid_option_over_http_is_400_listing_fields(api: Api) -> None:
    response = await api.get("/box", width="5", selector="#el", clip="0,0,10,10")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert set(error["details"]["fields"]) == {"width", "selector", "clip"}
