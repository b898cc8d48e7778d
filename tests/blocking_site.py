"""Test-site pages for block_resources, block_requests and metadata (tests/test_request_blocking.py,
tests/test_metadata.py).  Each page's subresources live under its own ``/bm/{token}/`` so a test
counts what reached the site for its capture alone (``hits`` records paths)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

IMAGE_RGB, STYLE_RGB, SCRIPT_RGB = (220, 0, 0), (0, 0, 220), (0, 160, 0)
IMAGE_AT, STYLE_AT, SCRIPT_AT = (50, 50), (250, 50), (450, 50)  # a pixel inside each painted square
FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
WEB_FONT = "BlockmetaBrand"
_FONT_BYTES = FONT_FILE.read_bytes()


def _png(rgb: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (100, 100), rgb).save(out, "PNG")
    return out.getvalue()


def _page(body: str, head: str = "") -> web.Response:
    html = f"<!doctype html><html><head><meta charset=utf-8>{head}</head><body style='margin:0'>{body}</body></html>"
    return web.Response(text=html, content_type="text/html")


def add_blocking_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/bm/{token}/page")
    async def page(request: web.Request) -> web.Response:
        # An image, a stylesheet, a script, a font, a fetch and an XHR: each seen by the site when made.
        return _page(
            "<img src='red.png?v=1' style='position:absolute;left:0;top:0;width:100px;height:100px'>"
            "<div id=styled style='position:absolute;left:200px;top:0;width:100px;height:100px'></div>"
            "<div id=scripted style='position:absolute;left:400px;top:0;width:100px;height:100px'></div>"
            f"<p style='position:absolute;top:200px;font-family:{WEB_FONT}'>Font</p>"
            "<script src='script.js'></script>"
            "<script>fetch('data.json').catch(() => {});"
            "const x = new XMLHttpRequest(); x.open('GET', 'xhr.txt'); x.send();</script>",
            head=f"<link rel=stylesheet href='style.css'><style>@font-face{{font-family:{WEB_FONT};"
                 "src:url(font.ttf)}</style>")

    @routes.get("/bm/{token}/red.png")
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=_png(IMAGE_RGB), content_type="image/png")

    @routes.get("/bm/{token}/style.css")
    async def style(request: web.Request) -> web.Response:
        return web.Response(text=f"#styled {{ background: rgb{STYLE_RGB} }}", content_type="text/css")

    @routes.get("/bm/{token}/script.js")
    async def script(request: web.Request) -> web.Response:
        return web.Response(text=f"document.getElementById('scripted').style.background = 'rgb{SCRIPT_RGB}';",
                            content_type="application/javascript")

    @routes.get("/bm/{token}/font.ttf")
    async def font(request: web.Request) -> web.Response:
        return web.Response(body=_FONT_BYTES, content_type="font/ttf")

    @routes.get("/bm/{token}/data.json")
    async def data(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @routes.get("/bm/{token}/xhr.txt")
    async def xhr(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    @routes.get("/bm/{token}/socket")
    async def socket_page(request: web.Request) -> web.Response:
        # Green once the WebSocket opened, white while it has not.
        return _page("<div id=ws style='width:100px;height:100px'></div><script>"
                     "const ws = new WebSocket(location.href.replace('http', 'ws').replace(/socket$/, 'ws'));"
                     f"ws.onopen = () => {{ document.getElementById('ws').style.background = 'rgb{SCRIPT_RGB}'; }};"
                     "</script>")

    @routes.get("/bm/{token}/ws")
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    @routes.get("/bm/{token}/frame")
    async def frame(request: web.Request) -> web.Response:
        return _page("<iframe src='red.png' style='border:0;width:120px;height:120px'></iframe>")

    @routes.get("/bm/{token}/meta")
    async def meta(request: web.Request) -> web.Response:
        tags = {"og:title": "OG Title", "og:image": "/img/og.png", "og:url": "page",
                "twitter:card": "summary", "twitter:image": "tw.png"}
        head = ("<title>  The Title </title><meta name=description content='A description'>"
                "<link rel=canonical href='../canon'><link rel=icon href='favicon.ico'>"
                "<link rel='apple-touch-icon' href='/touch.png'>"
                + "".join(f"<meta property='{k}' content='{v}'>" for k, v in tags.items())
                + f"<style>@font-face{{font-family:{WEB_FONT};src:url(font.ttf)}}</style>")
        return web.Response(text=f"<!doctype html><html lang=fr-CA><head><meta charset=utf-8>{head}</head>"
                                 f"<body><h1 style='font-family:{WEB_FONT}'>Heading</h1><p>text</p></body></html>",
                            content_type="text/html")

    @routes.get("/bm/{token}/hostile")
    async def hostile(request: web.Request) -> web.Response:
        huge = "x" * 200_000
        many = "".join(f"<meta property='og:k{i}' content='{i}'>" for i in range(500))
        icons = "".join(f"<link rel=icon href='i{i}.png'>" for i in range(500))
        script = ("<script>document.title = 'T'.repeat(100000);"
                  "Object.defineProperty(document, 'title', {get() { return {evil: 1}; }});"
                  "HTMLMetaElement.prototype.getAttribute = () => 42;"
                  "document.documentElement.lang = 'l'.repeat(50000);</script>")
        return _page(f"<p>hostile</p>{script}",
                     head=f"<meta name=description content='{huge}'><meta property='og:title' content='{huge}'>"
                          f"<link rel=canonical href='javascript:alert(1)'>{many}{icons}"
                          f"<meta name='twitter:{json.dumps('a')}' content='q'>")
