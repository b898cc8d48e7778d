"""The site the ``headers`` tests read: it records every request's host, port, path and headers.

One aiohttp app listens on two ports of 127.0.0.1.  The target is
``127.0.0.1:port``; ``127.0.0.1:other_port`` is another origin of the same site
(its frames share the target's renderer process), and ``thirdparty.test:port`` is
another site (the pool's resolver maps the name to 127.0.0.1).

``/page`` loads same-origin and third-party resources.  ``/frames`` embeds, besides
frames of its own origin, two hostile frames (``/evil``) that fetch the target's
origin, load an image from it, do so from a blank child and a worker, navigate a
child frame of theirs that holds a page of the target's origin, and then navigate
themselves to it; every hostile request's path starts with ``/stolen/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.site import PIXEL_PNG

THIRD = "thirdparty.test"
# The messages /frames waits for before it shows #done: every frame's and worker's requests are answered.
FRAME_MESSAGES = ("same", "sandboxed", "sandboxed-same", "blank", "srcdoc", "sandboxed-srcdoc", "data", "worker",
                  "near", "far")


@dataclass
class Seen:
    host: str  # without the port
    port: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HeadersSite:
    port: int = 0
    other_port: int = 0
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other(self) -> str:
        return f"http://127.0.0.1:{self.other_port}"

    @property
    def third(self) -> str:
        return f"http://{THIRD}:{self.port}"

    def at(self, host: str, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.host == host and (path is None or s.path == path)]

    def at_target(self, prefix: str = "/") -> list[Seen]:
        """What the target's origin received on paths starting with ``prefix``."""
        return [s for s in self.seen if (s.host, s.port) == ("127.0.0.1", self.port) and s.path.startswith(prefix)]


def _html(body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><meta charset=utf-8><body>{body}", content_type="text/html")


def _page(third: str) -> str:
    return (
        "<img src='/same.png'><iframe src='/same-frame'></iframe>"
        f"<img src='{third}/img.png'>"
        f"<iframe src='{third}/frame'></iframe>"
        "<script>fetch('/same-fetch')"
        f".then(() => fetch('{third}/api', {{mode: 'no-cors'}}))"
        ".finally(() => document.body.insertAdjacentHTML('beforeend', '<b id=done>done</b>'));</script>"
    )


def _frames(site: HeadersSite) -> str:
    target, told = site.url, "parent.postMessage"
    return (
        f"<img src='{target}/own.png'><iframe src='{target}/child?name=same'></iframe>"
        f"<iframe src='{site.other}/evil?name=near&nav=form'></iframe>"
        f"<iframe src='{site.third}/evil?name=far&nav=link'></iframe>"
        f"<iframe srcdoc=\"<script>fetch('{target}/srcdoc-fetch').finally(() => {told}('srcdoc', '*'))</script>\">"
        "</iframe>"
        f"<iframe sandbox=allow-scripts srcdoc=\"<script>fetch('{target}/sandboxed-srcdoc-fetch', {{mode: 'no-cors'}})"
        f".finally(() => {told}('sandboxed-srcdoc', '*'))</script>\"></iframe>"
        f"<iframe sandbox srcdoc=\"<img src='{target}/sandboxed-img'>\"></iframe>"
        f"<iframe sandbox=allow-scripts src='{target}/child?name=sandboxed'></iframe>"
        f"<iframe src=\"data:text/html,<script>fetch('{target}/data-fetch', {{mode: 'no-cors'}})"
        f".finally(() => {told}('data', '*'))</script>\"></iframe>"
        f"<iframe sandbox='allow-scripts allow-same-origin' src='{target}/child?name=sandboxed-same'></iframe>"
        f"<script>const want = new Set({list(FRAME_MESSAGES)!r});"
        "const done = () => { if (!want.size && document.readyState == 'complete')"
        "  document.body.insertAdjacentHTML('beforeend', '<b id=done>done</b>'); };"
        "addEventListener('message', e => { want.delete(e.data); done(); }); addEventListener('load', done);"
        f"fetch('{target}/own-fetch');"
        f"const xhr = new XMLHttpRequest(); xhr.open('GET', '{target}/own-xhr'); xhr.send();"
        "const blank = document.createElement('iframe'); document.body.append(blank);"
        f"blank.contentWindow.fetch('{target}/blank-fetch').finally(() => postMessage('blank', '*'));"
        f"new Worker('{target}/worker.js').onmessage = () => postMessage('worker', '*');"
        "</script>"
    )


def _evil(site: HeadersSite, name: str, nav: str) -> str:
    stolen = f"{site.url}/stolen"
    worker = f"fetch('{stolen}/worker-{name}', {{mode: 'no-cors'}}).finally(() => postMessage(1))"
    go = (f"document.body.insertAdjacentHTML('beforeend', \"<form action='{stolen}/form-{name}'></form>\");"
          "document.forms[0].submit();") if nav == "form" else (
        f"document.body.insertAdjacentHTML('beforeend', \"<a href='{stolen}/link-{name}'>go</a>\");"
        "document.links[0].click();")
    # Its child frame first holds a page of the target's origin, then it navigates that frame.
    child = ("const child = document.createElement('iframe');"
             "const loaded = () => new Promise(done => { child.onload = done; });"
             f"const first = loaded(); child.src = '{stolen}/child-{name}'; document.body.append(child);")
    renavigate = f"const again = loaded(); child.src = '{stolen}/renavigate-{name}'; return again;"
    return (
        f"<script>{child}"
        "const blank = document.createElement('iframe'); document.body.append(blank);"
        "const image = new Image();"
        "Promise.allSettled([first,"
        f"  fetch('{stolen}/fetch-{name}', {{mode: 'no-cors'}}),"
        f"  fetch('{stolen}/cors-{name}').then(r => r.text()),"
        f"  new Promise(done => {{ image.onload = image.onerror = done; image.src = '{stolen}/img-{name}'; }}),"
        f"  blank.contentWindow.fetch('{stolen}/blank-{name}', {{mode: 'no-cors'}}),"
        f"  new Promise(done => {{ new Worker(URL.createObjectURL(new Blob([\"{worker}\"]))).onmessage = done; }}),"
        f"]).then(() => {{ {renavigate} }}).then(() => {{ {go} }});"
        "</script>"
    )


@asynccontextmanager
async def running_site() -> AsyncIterator[HeadersSite]:
    site = HeadersSite()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else 0
        site.seen.append(Seen(request.host.split(":")[0], port, request.method, request.path, dict(request.headers)))
        return await handler(request)  # type: ignore[no-any-return]

    async def page(request: web.Request) -> web.Response:
        return _html(_page(site.third))

    async def frames(request: web.Request) -> web.Response:
        return _html(_frames(site))

    async def evil(request: web.Request) -> web.Response:
        return _html(_evil(site, request.query["name"], request.query["nav"]))

    async def child(request: web.Request) -> web.Response:
        name = request.query["name"]
        return _html(f"<script>fetch('{site.url}/child-fetch/{name}', {{mode: 'no-cors'}})"
                     f".finally(() => parent.postMessage('{name}', '*'))</script>")

    async def stolen(request: web.Request) -> web.Response:
        # Permissive CORS, as in the finding; a navigation that lands here tells the target page.
        name = request.path.rsplit("-", 1)[-1]
        return web.Response(text=f"<!doctype html><script>parent.postMessage('{name}', '*')</script>",
                            content_type="text/html", headers={"Access-Control-Allow-Origin": "*"})

    async def preflight(request: web.Request) -> web.Response:
        return web.Response(headers={"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*"})

    async def worker(request: web.Request) -> web.Response:
        return web.Response(text="fetch('/worker-fetch').finally(() => postMessage(1))",
                            content_type="text/javascript")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PIXEL_PNG, content_type="image/png")

    async def text(request: web.Request) -> web.Response:
        return _html("<p>frame or data</p>")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application(middlewares=[record])
    app.router.add_get("/page", page)
    app.router.add_get("/frames", frames)
    app.router.add_get("/evil", evil)
    app.router.add_get("/child", child)
    app.router.add_get("/child-fetch/{name}", text)
    app.router.add_get("/stolen/{what}", stolen)
    app.router.add_options("/stolen/{what}", preflight)
    app.router.add_get("/worker.js", worker)
    for path in ("/same.png", "/img.png", "/own.png", "/sandboxed-img"):
        app.router.add_get(path, image)
    for path in ("/same-fetch", "/api", "/frame", "/same-frame", "/own-fetch", "/own-xhr", "/blank-fetch",
                 "/srcdoc-fetch", "/sandboxed-srcdoc-fetch", "/data-fetch", "/worker-fetch"):
        app.router.add_get(path, text)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(2):
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        ports.append(tcp._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    site.port, site.other_port = ports
    try:
        yield site
    finally:
        await runner.cleanup()
