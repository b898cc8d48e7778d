"""The benchmark's local fixture site: four kinds of page, all on 127.0.0.1.

* ``/small``  — a tiny page whose JavaScript paints a square (proves JS ran);
  ``?changing=1`` adds a bar of another colour at every request (the visual-diff phase).
* ``/heavy``  — about 5000 DOM elements (a styled table) plus the same square.
* ``/lazy``   — a tall page of ``loading=lazy`` images, captured full-page.
* ``/slow``   — a small page whose one image takes ``SLOW_MS`` to arrive, so
  its load event is late: latency is dominated by waiting, not by CPU.
* ``/long``   — text and coloured bands exactly ``LONG_HEIGHT`` px tall: a 1280 x 16384
  full page (the visual-diff phase, diffs.py); ``?changing=1`` repaints one band per
  request, so each capture differs from the one before.

Nothing is fetched from outside; images are inline-generated SVG.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

# The square painted by JavaScript on /small and /heavy: (100,100)-(300,300).
PAINT_RGB = (0, 128, 0)
PAINT_PIXEL = (200, 200)
HEAVY_ROWS = 1000  # 1000 × (tr + 4 td) ≈ 5000 elements
LAZY_IMAGES = 24
SLOW_MS = 300
LONG_HEIGHT = 16384  # /long: the service's full-page cap, the largest image a diff compares
LONG_BAND = 256  # px per band of /long: a heading, a paragraph and a coloured bar
DOCUMENT_SECTIONS = 40  # /document: headings, paragraphs and a table, about 30 Letter pages

_PAINT = (
    "<div id=box style='position:absolute;left:100px;top:100px;width:200px;height:200px'></div>"
    f"<script>document.getElementById('box').style.background='rgb{PAINT_RGB}';</script>"
)


def _page(body: str, head: str = "") -> web.Response:
    html = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"{head}</head><body style='margin:0;font-family:sans-serif'>{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html")


def _svg(index: int) -> str:
    hue = (index * 37) % 360
    return (
        "<svg xmlns='http://www.w3.org/2000/svg' width='600' height='300'>"
        f"<rect width='600' height='300' fill='hsl({hue},70%,60%)'/>"
        f"<text x='20' y='160' font-size='48' fill='#fff'>image {index}</text></svg>"
    )


def _heavy_html() -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td class=n>{i * 7919 % 10007}</td><td>row {i}</td><td><b>{i % 13}</b></td></tr>"
        for i in range(HEAVY_ROWS)
    )
    return f"<table>{rows}</table>{_PAINT}"


def _document_html() -> str:
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    paragraph = " ".join(words[(i * 7) % len(words)] for i in range(120))
    table = "".join(f"<tr><td>{i}</td><td>{i * 7919 % 10007}</td><td>item {i}</td></tr>" for i in range(12))
    return "".join(f"<h2>Section {n}</h2><p>{paragraph}</p><p>{paragraph}</p><table>{table}</table>"
                   for n in range(DOCUMENT_SECTIONS))


_HEAVY_HEAD = "<style>td{padding:2px 6px;border-bottom:1px solid #ddd}.n{color:#a33}</style>"


def build() -> web.Application:
    heavy = _heavy_html()
    lazy = "".join(
        f"<section style='height:400px'><h2>section {i}</h2>"
        f"<img loading=lazy src='/img/{i}.svg' width=600 height=300></section>"
        for i in range(LAZY_IMAGES)
    )
    document = _document_html()
    def long_html(repainted: int | None = None) -> str:
        return "".join(
            f"<section style='height:{LONG_BAND}px;overflow:hidden'><h2>band {i}</h2>"
            f"<p>{'Lorem ipsum dolor sit amet. ' * 12}</p><div style='height:40px;width:{300 + 7 * i}px;"
            f"background:hsl({(i * 37 + (180 if i == repainted else 0)) % 360},60%,55%)'></div></section>"
            for i in range(LONG_HEIGHT // LONG_BAND)
        )

    long = long_html()
    served = itertools.count()
    routes = web.RouteTableDef()

    @routes.get("/small")
    async def small(request: web.Request) -> web.Response:
        bar = ""
        if request.query.get("changing"):
            shade = next(served)  # light and dark in turn: every pixel of the bar changes beyond any threshold
            bar = (f"<div style='position:absolute;left:400px;top:100px;width:300px;height:100px;"
                   f"background:hsl({shade * 37 % 360},70%,{25 + shade % 2 * 50}%)'></div>")
        return _page("<h1 style='margin:8px'>small</h1>" + _PAINT + bar)

    @routes.get("/heavy")
    async def heavy_page(request: web.Request) -> web.Response:
        return _page(heavy, head=_HEAVY_HEAD)

    @routes.get("/lazy")
    async def lazy_page(request: web.Request) -> web.Response:
        return _page(lazy)

    @routes.get("/long")
    async def long_page(request: web.Request) -> web.Response:
        body = long_html(next(served) % (LONG_HEIGHT // LONG_BAND)) if request.query.get("changing") else long
        return _page(body, head="<style>body{margin:0}h2,p{margin:8px}</style>")

    @routes.get("/document")
    async def document_page(request: web.Request) -> web.Response:
        return _page(document, head="<style>body{margin:0 8px;line-height:1.5}td{border:1px solid #ccc}</style>")

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        ms = int(request.query.get("ms", str(SLOW_MS)))
        return _page(f"<h1>slow resource</h1><img src='/slow-resource.svg?ms={ms}' width=600 height=300>")

    @routes.get("/slow-resource.svg")
    async def slow_resource(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", str(SLOW_MS))) / 1000)
        return web.Response(text=_svg(0), content_type="image/svg+xml")

    @routes.get("/img/{index}.svg")
    async def image(request: web.Request) -> web.Response:
        return web.Response(text=_svg(int(request.match_info["index"])), content_type="image/svg+xml",
                            headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.add_routes(routes)
    return app


@dataclass(frozen=True)
class FixtureSite:
    base_url: str
    port: int

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.asynccontextmanager
async def serve(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[FixtureSite]:
    runner = web.AppRunner(build(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield FixtureSite(base_url=f"http://{host}:{bound}", port=bound)
    finally:
        await runner.cleanup()
