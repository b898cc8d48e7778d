"""The local test site: small pages whose pixels prove what the browser did.

Colours are painted by JavaScript so a capture that skipped JS shows white.
Every request's path is appended to ``hits`` so tests can see what arrived.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

# The square JS paints on /paint: (100,100)-(300,300) in this colour.
PAINT_RGB = (0, 128, 0)


def _html(body: str, head: str = "") -> web.Response:
    page = f"<!doctype html><html><head><meta charset=utf-8>{head}</head><body style='margin:0'>{body}</body></html>"
    return web.Response(text=page, content_type="text/html")


def build(hits: list[str]) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        hits.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    routes = web.RouteTableDef()

    @routes.get("/paint")
    async def paint(request: web.Request) -> web.Response:
        return _html(
            "<div id=box style='position:absolute;left:100px;top:100px;width:200px;height:200px'></div>"
            "<script>document.getElementById('box').style.background="
            f"'rgb{PAINT_RGB}';</script>"
        )

    @routes.get("/tall")
    async def tall(request: web.Request) -> web.Response:
        height = int(request.query.get("h", "3000"))
        return _html(
            f"<div style='height:{height}px;background:linear-gradient(#fff,#00f)'></div>"
            "<div style='position:absolute;left:0;bottom:0;width:100%;height:50px;background:rgb(255,0,0)' "
            "id=bottom></div>",
            head="<style>body{position:relative}</style>",
        )

    @routes.get("/cookie")
    async def cookie(request: web.Request) -> web.Response:
        # Red when a cookie or localStorage from an earlier capture is visible, green otherwise.
        return _html(
            "<div id=box style='width:100%;height:100vh'></div><script>"
            "const seen = document.cookie.includes('visited=1') || localStorage.getItem('visited');"
            "document.getElementById('box').style.background = seen ? 'rgb(255,0,0)' : 'rgb(0,255,0)';"
            "document.cookie = 'visited=1; max-age=3600'; localStorage.setItem('visited', '1');"
            "</script>"
        )

    @routes.get("/hang")
    async def hang(request: web.Request) -> web.Response:
        return _html("<p>spinning</p><script>while (true) {}</script>")

    @routes.get("/never-loads")
    async def never_loads(request: web.Request) -> web.Response:
        return _html("<p>waiting</p><img src='/stall'>")

    @routes.get("/stall")
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        with_timeout = float(request.query.get("s", "60"))
        await asyncio.sleep(with_timeout)
        return response

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "2")))
        return _html("<div style='width:100%;height:100vh;background:rgb(0,0,255)'></div>")

    @routes.get("/dialogs")
    async def dialogs(request: web.Request) -> web.Response:
        return _html(
            "<div id=box style='width:100%;height:100vh;background:rgb(255,0,0)'></div><script>"
            "alert('hi'); confirm('sure?'); prompt('name?');"
            "window.onbeforeunload = () => 'stay';"
            "document.getElementById('box').style.background='rgb(0,255,0)';</script>"
        )

    @routes.get("/popup")
    async def popup(request: web.Request) -> web.Response:
        return _html(
            "<div style='width:100%;height:100vh;background:rgb(0,255,0)'></div>"
            "<script>window.open('/popup-target'); window.open('/popup-target');</script>"
        )

    @routes.get("/popup-target")
    async def popup_target(request: web.Request) -> web.Response:
        return _html("<p>popup</p>")

    @routes.get("/download")
    async def download(request: web.Request) -> web.Response:
        return web.Response(
            body=b"x" * 1024,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Disposition": "attachment; filename=payload.bin"},
        )

    @routes.get("/redirect")
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    @routes.get("/reach")
    async def reach(request: web.Request) -> web.Response:
        """A page that reaches for ``target`` one way (``kind``): egress tests point it at a canary."""
        target = request.query["target"]
        kind = request.query["kind"]
        page = REACH[kind].replace("WSTARGET", target.replace("http", "ws", 1))
        return _html(page.replace("TARGET", target))

    app.add_routes(routes)
    return app


# One way per entry for a page to make the browser send a request to TARGET.
REACH = {
    "img": "<img src='TARGET/img.png'>",
    "iframe": "<iframe src='TARGET/frame'></iframe>",
    "script": "<script src='TARGET/s.js'></script>",
    "stylesheet": "<link rel=stylesheet href='TARGET/s.css'>",
    "css_background": "<div style=\"width:10px;height:10px;background:url('TARGET/bg.png')\"></div>",
    "fetch": "<script>fetch('TARGET/fetch', {mode: 'no-cors'}).catch(() => {});</script>",
    "xhr": "<script>const x = new XMLHttpRequest(); x.open('GET', 'TARGET/xhr'); x.send();</script>",
    "websocket": "<script>try { new WebSocket('WSTARGET/ws'); } catch (e) {}</script>",
    "eventsource": "<script>new EventSource('TARGET/events');</script>",
    "beacon": "<script>navigator.sendBeacon('TARGET/beacon', 'x');</script>",
    "worker": "<script>try { new Worker('TARGET/worker.js'); } catch (e) {}</script>",
    "prefetch": "<link rel=prefetch href='TARGET/prefetch'><link rel=preload as=image href='TARGET/preload.png'>",
    "form_post": "<form id=f method=post action='TARGET/form'><input name=a value=1></form>"
                 "<script>document.getElementById('f').submit();</script>",
    "script_navigation": "<script>location = 'TARGET/navigated';</script>",
}
