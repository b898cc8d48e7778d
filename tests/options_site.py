"""Test pages for the capture options: each one's pixels prove one option worked.

Colours are painted by JavaScript where it matters (a capture that skipped JS
shows white).  The site records what reached it — host, path, headers,
cookies — so tests can prove what the browser sent, and what it never sent.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

ELEMENT = (50, 70, 240, 130)  # /box: #el's x, y, width, height
ELEMENT_RGB = (200, 30, 60)
AD_RGB = (30, 60, 200)
LIGHT_RGB, DARK_RGB = (250, 250, 250), (10, 10, 10)
MOTION_RGB, STILL_RGB = (255, 0, 0), (0, 0, 255)
GREEN, RED = (0, 200, 0), (220, 0, 0)
HEADER_RGB = (255, 0, 255)  # the fixed header on /bands
# /lazy: (top, colour) of each image; every one is far below the first screen but the first.
LAZY_IMAGES = [(300, (230, 120, 0)), (1500, (0, 150, 150)), (2700, (120, 0, 200)),
               (3900, (90, 160, 0)), (5100, (200, 0, 120))]
LAZY_NATIVE = (5600, (0, 90, 210))  # an <img loading=lazy>
LAZY_BLOCK = (6100, (160, 110, 40))  # a div an IntersectionObserver paints when seen
LAZY_HEIGHT = 6600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def band_rgb(index: int) -> tuple[int, int, int]:
    """Distinct, far-apart colours for /bands (no two bands alike, none close to white or magenta)."""
    return ((index * 67) % 200 + 20, (index * 131) % 200 + 20, (index * 37 + 90) % 160 + 20)


@dataclass
class Seen:
    host: str
    path: str
    headers: dict[str, str]
    cookies: dict[str, str]


@dataclass
class Record:
    requests: list[Seen] = field(default_factory=list)

    def hosts(self) -> list[str]:
        return [seen.host.split(":")[0] for seen in self.requests]

    def last(self, path: str) -> Seen:
        return [seen for seen in self.requests if seen.path == path][-1]


def _html(body: str, head: str = "", headers: dict[str, str] | None = None) -> web.Response:
    page = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<style>body{{margin:0;background:#fff}}</style>{head}</head><body>{body}</body></html>"
    )
    return web.Response(text=page, content_type="text/html", headers=headers)


def _rgb(colour: tuple[int, int, int]) -> str:
    return f"rgb({colour[0]},{colour[1]},{colour[2]})"


def _png(colour: tuple[int, int, int], size: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


def build(record: Record) -> web.Application:
    @web.middleware
    async def remember(request: web.Request, handler: Handler) -> web.StreamResponse:
        record.requests.append(Seen(request.host, request.path, dict(request.headers), dict(request.cookies)))
        return await handler(request)

    app = web.Application(middlewares=[remember])
    routes = web.RouteTableDef()

    @routes.get("/box")
    async def box(request: web.Request) -> web.Response:
        x, y, w, h = ELEMENT
        return _html(
            f"<div id=el style='position:absolute;left:{x}px;top:{y}px;width:{w}px;height:{h}px'></div>"
            f"<div class=ad style='position:absolute;left:400px;top:70px;width:100px;height:100px;"
            f"background:{_rgb(AD_RGB)}'></div>"
            f"<script>document.getElementById('el').style.background='{_rgb(ELEMENT_RGB)}'</script>"
        )

    @routes.get("/scheme")
    async def scheme(request: web.Request) -> web.Response:
        return _html(
            "<div id=motion style='width:100px;height:100px'></div>",
            head=f"<style>body{{background:{_rgb(LIGHT_RGB)}}} #motion{{background:{_rgb(MOTION_RGB)}}}"
            f"@media (prefers-color-scheme: dark){{body{{background:{_rgb(DARK_RGB)}}}}}"
            f"@media (prefers-reduced-motion: reduce){{#motion{{background:{_rgb(STILL_RGB)}}}}}</style>",
        )

    @routes.get("/lazy")
    async def lazy(request: web.Request) -> web.Response:
        images = "".join(
            f"<img class=io data-src='/img/{c[0]}-{c[1]}-{c[2]}.png?delay=300' "
            f"style='position:absolute;left:100px;top:{top}px;width:200px;height:200px'>"
            for top, c in LAZY_IMAGES
        )
        top, c = LAZY_NATIVE
        native = (f"<img loading=lazy src='/img/{c[0]}-{c[1]}-{c[2]}.png?delay=300' "
                  f"style='position:absolute;left:100px;top:{top}px;width:200px;height:200px'>")
        block = f"<div id=block style='position:absolute;left:100px;top:{LAZY_BLOCK[0]}px;width:200px;height:200px'></div>"
        script = (
            "<script>const io = new IntersectionObserver(entries => { for (const e of entries) {"
            " if (!e.isIntersecting) continue; const t = e.target; io.unobserve(t);"
            f" if (t.id === 'block') t.style.background = '{_rgb(LAZY_BLOCK[1])}'; else t.src = t.dataset.src; }}"
            "}); document.querySelectorAll('img.io, #block').forEach(el => io.observe(el));</script>"
        )
        return _html(f"<div style='position:relative;height:{LAZY_HEIGHT}px'>{images}{native}{block}</div>{script}")

    @routes.get("/img/{colour}.png")
    async def image(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("delay", "0")) / 1000)
        r, g, b = (int(part) for part in request.match_info["colour"].split("-"))
        return web.Response(body=_png((r, g, b)), content_type="image/png")

    @routes.get("/bands")
    async def bands(request: web.Request) -> web.Response:
        count = int(request.query.get("n", "30"))
        colours = json.dumps([list(band_rgb(i)) for i in range(count)])
        return _html(
            f"<div id=hdr style='position:fixed;top:0;left:0;right:0;height:40px;background:{_rgb(HEADER_RGB)}'>"
            "</div><div id=root></div><script>"
            f"for (const c of {colours}) {{ const d = document.createElement('div');"
            " d.style.height = '1000px'; d.style.background = `rgb(${c.join(',')})`;"
            " document.getElementById('root').appendChild(d); }</script>"
        )

    @routes.get("/device")
    async def device(request: web.Request) -> web.Response:
        # Three stripes, each green when one property of the emulated device holds.
        checks = ["/iPhone/.test(navigator.userAgent)", "navigator.maxTouchPoints > 0 && 'ontouchstart' in window",
                  "matchMedia('(hover: none)').matches || window.innerWidth < 800"]
        stripes = "".join("<div class=s style='height:100px'></div>" for _ in checks)
        return _html(
            stripes + "<script>const ok = [" + ",".join(checks) + "];"
            f"document.querySelectorAll('.s').forEach((d, i) => d.style.background = ok[i] ? '{_rgb(GREEN)}' : "
            f"'{_rgb(RED)}');</script>",
            head="<meta name=viewport content='width=device-width, initial-scale=1'>",
        )

    @routes.get("/transparent")
    async def transparent(request: web.Request) -> web.Response:
        page = ("<!doctype html><html><head><style>body{margin:0}</style></head><body>"
                f"<div style='width:100px;height:100px;background:{_rgb(GREEN)}'></div></body></html>")
        return web.Response(text=page, content_type="text/html")

    @routes.get("/echo")
    async def echo(request: web.Request) -> web.Response:
        # The third-party image lets tests prove cookies stay with the target's host.
        port = request.url.port
        return _html(f"<p>echo</p><img src='http://thirdparty.test:{port}/pixel.png'>")

    @routes.get("/pixel.png")
    async def pixel(request: web.Request) -> web.Response:
        return web.Response(body=_png(GREEN, 1), content_type="image/png")

    @routes.get("/ads")
    async def ads(request: web.Request) -> web.Response:
        port = request.url.port
        return _html(
            f"<img src='http://ad.doubleclick.net:{port}/ad.png'>"
            f"<img src='http://sb.scorecardresearch.com:{port}/beacon.png'>"
            f"<img src='/pixel.png'><div style='width:100px;height:100px;background:{_rgb(GREEN)}'></div>"
        )

    @routes.get("/ad.png")
    @routes.get("/beacon.png")
    async def ad_image(request: web.Request) -> web.Response:
        return web.Response(body=_png(RED, 50), content_type="image/png")

    @routes.get("/consent")
    async def consent(request: web.Request) -> web.Response:
        return _html(
            "<div id=status style='width:100px;height:100px;background:" + _rgb(RED) + "'></div>"
            "<div id=onetrust-banner-sdk style='position:fixed;left:0;right:0;bottom:0;height:200px;"
            f"background:{_rgb(RED)}'><button id=onetrust-accept-btn-handler>Accept all</button></div>"
            "<div id=site-cookie-banner style='position:fixed;left:0;top:300px;width:300px;height:100px;"
            "background:rgb(255,140,0)'>We use cookies</div>"
            "<script>document.getElementById('onetrust-accept-btn-handler').addEventListener('click', () =>"
            f" document.getElementById('status').style.background = '{_rgb(GREEN)}');</script>"
        )

    @routes.get("/late")
    async def late(request: web.Request) -> web.Response:
        return _html(
            "<div id=box style='width:100px;height:100px'></div><script>setTimeout(() => {"
            " const el = document.getElementById('box'); el.id = 'ready';"
            f" el.style.background = '{_rgb(GREEN)}'; }}, 700);</script>"
        )

    @routes.get("/csp")
    async def csp(request: web.Request) -> web.Response:
        # A page that forbids inline style and script: injected css/js must still apply.
        return _html("<p>strict</p>", headers={"Content-Security-Policy": "default-src 'none'"})

    app.add_routes(routes)
    return app
