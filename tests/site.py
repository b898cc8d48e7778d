"""The local test site: small pages whose pixels prove what the browser did.

Colours are painted by JavaScript so a capture that skipped JS shows white.
Every request's path is appended to ``hits`` so tests can see what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator

from aiohttp import web

from tests.blocking_site import add_blocking_routes
from tests.content_site import add_content_routes
from tests.monitor_site import add_monitor_routes
from tests.scene_site import add_scene_routes

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
        # ?gate=TOKEN (from held_back()): answers when the test releases it, not after a guessed time.
        if "gate" in request.query:
            await _released(request.query["gate"])
        else:
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

    @routes.get("/navigates")
    async def navigates(request: web.Request) -> web.Response:
        # Its own script takes the main frame to ``to``: while parsing, ``after`` ms after load, or
        # when first scrolled (``on=scroll``: the page is 5000 px tall).
        to, after = json.dumps(request.query["to"]), request.query.get("after")
        go = f"location.href = {to};" if after is None else \
            f"addEventListener('load', () => setTimeout(() => location.href = {to}, {int(after)}));"
        if request.query.get("on") == "scroll":
            go = f"addEventListener('scroll', () => location.href = {to}, {{once: true}});"
        page = _html(f"<p style='height:5000px'>leaving</p><script>{go}</script>")
        page.set_status(int(request.query.get("code", "200")))
        return page

    @routes.get("/loop")
    async def loop(request: web.Request) -> web.Response:
        # Navigates to the next of itself as soon as it loads, for ever.
        return _html(f"<p>again</p><script>location.href = '/loop?n={int(request.query.get('n', '0')) + 1}';</script>")

    @routes.get("/reach")
    async def reach(request: web.Request) -> web.Response:
        """A page that reaches for ``target`` one way (``kind``): egress tests point it at a canary."""
        target = request.query["target"]
        kind = request.query["kind"]
        page = REACH[kind].replace("WSTARGET", target.replace("http", "ws", 1))
        return _html(page.replace("TARGET", target))

    add_trust_routes(routes)
    add_resource_routes(routes)
    add_blocking_routes(routes)
    add_content_routes(routes)
    add_scene_routes(routes)
    add_monitor_routes(routes)
    app.add_routes(routes)
    return app


# -- pages for the trust tests (tests/test_page_facts*.py, tests/test_capture_trust*.py) ---------

def solid_png(width: int, height: int, rgb: tuple[int, int, int], *, filter_type: int = 0) -> bytes:
    """A PNG of one colour, rows stored with ``filter_type`` (for pages and for the blank check's tests)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    pixel = bytes(rgb)
    flat = pixel * width
    first = {0: flat, 1: pixel + bytes(len(flat) - 3), 2: flat}.get(filter_type, flat)
    later = {0: flat, 1: pixel + bytes(len(flat) - 3), 2: bytes(len(flat))}.get(filter_type, flat)
    rows = bytes([filter_type]) + first + b"".join(bytes([filter_type]) + later for _ in range(height - 1))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PIXEL_PNG = solid_png(4, 4, (0, 0, 255))
# /late: what the page paints once its late data arrived (before: LATE_BEFORE).
LATE_BEFORE, LATE_AFTER = (255, 0, 0), (0, 160, 0)
# token -> released: /late-data and /slow?gate= wait until the test releases it (a gate, not a timer).
LATE_GATES: dict[str, asyncio.Event] = {}
GATE_BOUND = 60.0  # seconds a held request waits at most: a test that never releases still ends


@contextlib.contextmanager
def held_back() -> Iterator[str]:
    """A token whose gated requests wait until the block ends (however it ends)."""
    token = uuid.uuid4().hex
    LATE_GATES[token] = asyncio.Event()
    try:
        yield token
    finally:
        LATE_GATES.pop(token).set()


async def _released(token: str) -> None:
    gate = LATE_GATES.get(token)
    if gate is not None:
        await asyncio.wait_for(gate.wait(), GATE_BOUND)


def add_trust_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/status")
    async def status(request: web.Request) -> web.Response:
        code = int(request.query.get("code", "404"))
        await asyncio.sleep(int(request.query.get("delay", "0")) / 1000)  # a slow server (ms), if asked
        page = (f"<!doctype html><html><head><title>Error {code}</title></head><body style='margin:0'>"
                f"<div style='width:100%;height:100vh;background:rgb(200,0,0)'>error {code}</div></body></html>")
        return web.Response(status=code, text=page, content_type="text/html")

    @routes.get("/hops")
    async def hops(request: web.Request) -> web.Response:
        # /hops?n=3&to=/paint: n redirects, then ``to``
        left = int(request.query.get("n", "1"))
        to = request.query.get("to", "/paint")
        raise web.HTTPFound(f"/hops?n={left - 1}&to={to}" if left > 1 else to)

    @routes.get("/titled")
    async def titled(request: web.Request) -> web.Response:
        return _html("<div style='width:100%;height:100vh;background:rgb(0,0,200);color:#fff'>titled</div>",
                     head=f"<title>{request.query.get('t', 'Titled page')}</title>")

    @routes.get("/blank")
    async def blank(request: web.Request) -> web.Response:
        return _html("", head="<style>html,body{background:rgb(250,250,250)}</style>")

    @routes.get("/pixel.png")
    async def pixel(request: web.Request) -> web.Response:
        return web.Response(body=PIXEL_PNG, content_type="image/png")

    @routes.get("/not-an-image.png")
    async def not_an_image(request: web.Request) -> web.Response:
        return web.Response(body=b"these bytes are no PNG", content_type="image/png")

    @routes.get("/images")
    async def images(request: web.Request) -> web.Response:
        broken = int(request.query.get("broken", "0"))
        tags = "<img src='/pixel.png' width=40 height=40>"
        tags += "".join("<img src='/missing.png' width=40 height=40>" if i % 2 == 0 else
                        "<img src='/not-an-image.png' width=40 height=40>" for i in range(broken))
        return _html(f"<div style='width:100%;height:100vh;background:rgb(0,120,0)'>{tags}</div>")

    @routes.get("/pending-image")
    async def pending_image(request: web.Request) -> web.Response:
        # An image held back by the test's gate: load never fires, the network is never quiet.
        token = request.query.get("token", "")
        return _html(f"<div style='width:100%;height:50vh;background:rgb(0,0,90)'>x</div>"
                     f"<img src='/late-data?token={token}' width=50 height=50>")

    @routes.get("/font-pending")
    async def font_pending(request: web.Request) -> web.Response:
        # After load the page asks for a web font held back by the test's gate: fonts are loading at capture.
        token = request.query.get("token", "")
        return _html(
            "<p id=text style='font-size:40px'>text</p><script>window.addEventListener('load', () => {"
            "  document.getElementById('text').style.fontFamily = 'Slow, serif'; document.fonts.load('40px Slow');"
            "});</script>",
            head=f"<style>@font-face{{font-family:Slow;src:url(/late-data?token={token}) format('woff2')}}</style>",
        )

    @routes.get("/late")
    async def late(request: web.Request) -> web.Response:
        # Red until /late-data answers, then green with an image: content that settles after load.
        token = request.query.get("token", "")
        return _html(
            f"<div id=box style='width:100%;height:100vh;background:rgb{LATE_BEFORE}'></div><script>"
            f"fetch('/late-data?token={token}').then(r => r.text()).then(() => {{"
            f"  const box = document.getElementById('box'); box.style.background = 'rgb{LATE_AFTER}';"
            "  const img = new Image(); img.src = '/pixel.png?late'; img.width = 50; img.height = 50;"
            "  box.appendChild(img); });</script>"
        )

    @routes.get("/late-data")
    async def late_data(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        if token in LATE_GATES:
            await _released(token)
        else:
            await asyncio.sleep(0.3)  # late, but only a little: ready must wait for it either way
        return web.Response(text="ok")

    @routes.get("/shifting")
    async def shifting(request: web.Request) -> web.Response:
        # A block that grows and shrinks for ever, pushing the text below it: the layout never settles.
        return _html(
            "<div id=grower></div><p style='font-size:30px'>pushed around</p>",
            head="<style>@keyframes grow{from{height:100px}to{height:600px}}"
            "#grower{background:rgb(0,90,0);animation:grow 1s linear infinite alternate}</style>",
        )

    @routes.get("/animated")
    async def animated(request: web.Request) -> web.Response:
        # Infinite CSS animations at random phases, a finite one, a transition and a Web Animation:
        # without disable_animations no two captures agree.
        boxes = "".join(
            f"<div class='spin' style='left:{20 + i * 150}px'></div>" for i in range(4)
        )
        return _html(
            boxes + "<div id=fade></div><div id=grow></div><div id=waapi></div><input id=field autofocus>"
            "<script>"
            "for (const el of document.querySelectorAll('.spin'))"
            "  el.style.animationDelay = (-Math.random() * 7) + 's';"
            "requestAnimationFrame(() => document.getElementById('grow').classList.add('big'));"
            "document.getElementById('waapi').animate("
            "  [{background: 'rgb(0,0,0)'}, {background: 'rgb(0,255,255)'}],"
            "  {duration: 5000, iterations: Infinity, delay: -Math.random() * 5000});"
            "document.getElementById('field').focus();"
            "</script>",
            head="<style>"
            "@keyframes hue{from{background:rgb(0,0,0);transform:rotate(0deg)}"
            "to{background:rgb(255,255,0);transform:rotate(360deg)}}"
            "@keyframes fade{from{opacity:0}to{opacity:1}}"
            ".spin{position:absolute;top:20px;width:100px;height:100px;animation:hue 7s linear infinite}"
            "#fade{position:absolute;top:200px;left:20px;width:100px;height:100px;background:rgb(0,0,255);"
            "animation:fade 60s linear 1 forwards}"
            "#grow{position:absolute;top:200px;left:200px;width:10px;height:100px;background:rgb(255,0,255);"
            "transition:width 60s linear}#grow.big{width:300px}"
            "#waapi{position:absolute;top:350px;left:20px;width:600px;height:50px}"
            "#field{position:absolute;top:450px;left:20px;width:200px;font-size:20px}"
            "</style>",
        )

    @routes.get("/emulated")
    async def emulated(request: web.Request) -> web.Response:
        # Four boxes, green when what the page reads equals what the test expects, else red;
        # #done appears when the geolocation answer (or refusal) came.
        q = request.query
        expect = {"tz": q.get("tz", ""), "lang": q.get("lang", ""), "lat": q.get("lat", ""),
                  "lon": q.get("lon", ""), "accept": request.headers.get("Accept-Language", "")}
        import json as _json

        return _html(
            "".join(f"<div id={name} style='position:absolute;left:{i * 100}px;top:0;width:100px;height:100px;"
                    "background:rgb(255,255,255)'></div>" for i, name in enumerate(("tz", "lang", "accept", "geo")))
            + "<script>"
            f"const want = {_json.dumps(expect)};"
            "const paint = (id, ok) => document.getElementById(id).style.background = ok ? 'rgb(0,200,0)' : 'rgb(200,0,0)';"
            "const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;"
            "const offset = new Date(Date.UTC(2026, 0, 15, 12)).getTimezoneOffset();"
            "const wantOffset = {'Europe/Paris': -60, 'America/New_York': 300, 'Asia/Tokyo': -540}[want.tz];"
            "paint('tz', zone === want.tz && offset === wantOffset);"
            "paint('lang', navigator.language === want.lang && navigator.languages[0] === want.lang"
            "  && Intl.NumberFormat().resolvedOptions().locale === want.lang);"
            "paint('accept', want.accept.split(',')[0] === want.lang);"
            "const done = () => { const d = document.createElement('div'); d.id = 'done';"
            "  d.style.cssText = 'position:absolute;left:0;top:200px;width:10px;height:10px;background:#000';"
            "  document.body.appendChild(d); };"
            "navigator.geolocation.getCurrentPosition("
            "  p => { paint('geo', Math.abs(p.coords.latitude - want.lat) < 1e-6"
            "         && Math.abs(p.coords.longitude - want.lon) < 1e-6); done(); },"
            "  () => { paint('geo', false); done(); }, {timeout: 20000});"
            "</script>"
        )


# -- pages for the resource bounds (tests/test_hardening_resources.py) -------------------------

# /huge: the element's top half, bottom half.
HUGE_TOP, HUGE_BOTTOM = (200, 0, 0), (0, 0, 200)


def add_resource_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/huge")
    async def huge(request: web.Request) -> web.Response:
        # One element of w x h CSS px (default 40000 x 8000), top half HUGE_TOP, bottom half HUGE_BOTTOM.
        w, h = int(request.query.get("w", "40000")), int(request.query.get("h", "8000"))
        return _html(f"<div id=huge style='width:{w}px;height:{h}px;background:linear-gradient("
                     f"rgb{HUGE_TOP} 0 50%, rgb{HUGE_BOTTOM} 50% 100%)'></div>")

    @routes.get("/hog")
    async def hog(request: web.Request) -> web.Response:
        # Keeps allocating JS arrays (~16 MB every 10 ms) up to ``mb`` (default 2048), then idles.
        cap = int(request.query.get("mb", "2048"))
        return _html("<p>hungry</p><script>const keep = []; const t = setInterval(() => {"
                     f"  if (keep.length * 8 >= {cap}) return clearInterval(t);"
                     "  keep.push(new Array(1e6).fill(Math.random()), new Array(1e6).fill(Math.random()));"
                     "}, 10);</script>")

    # Pages that grow storage the browser keeps outside their renderer.  Each writes 16 MB chunks
    # up to ``mb``, then shows its outcome as an element (``#stored``, ``#quota`` or ``#failed``, for
    # wait_for_selector) painted in (100,100)-(300,300) (STORED_RGB, QUOTA_RGB, FAILED_RGB) and
    # in the title (MB written, and the error's name).
    @routes.get("/blobs")
    async def blobs(request: web.Request) -> web.Response:
        # Blob bytes live in the browser process; reading a byte back waits until they are there
        # (every 64 MB: waiting on each chunk would halve the pace).
        return _storage_page(int(request.query.get("mb", "2048")),
                             "const blob = new Blob([chunk]); keep.push(blob);"
                             "if (keep.length % 4 === 0) await blob.slice(0, 1).arrayBuffer();")

    @routes.get("/cache-fill")
    async def cache_fill(request: web.Request) -> web.Response:
        return _storage_page(int(request.query.get("mb", "2048")),
                             "const cache = keep[0] || keep.push(await caches.open('fill')) && keep[0];"
                             "await cache.put(new Request('/fill/' + written), new Response(chunk));")

    @routes.get("/idb-fill")
    async def idb_fill(request: web.Request) -> web.Response:
        return _storage_page(int(request.query.get("mb", "2048")),
                             "const db = keep[0] || keep.push(await new Promise((ok, no) => {"
                             " const open = indexedDB.open('fill'); open.onerror = () => no(open.error);"
                             " open.onupgradeneeded = () => open.result.createObjectStore('chunks');"
                             " open.onsuccess = () => ok(open.result); })) && keep[0];"
                             "await new Promise((ok, no) => { const t = db.transaction('chunks', 'readwrite');"
                             " t.objectStore('chunks').put(chunk, written); t.oncomplete = ok;"
                             " t.onabort = t.onerror = () => no(t.error); });")


STORED_RGB, QUOTA_RGB, FAILED_RGB = (0, 160, 0), (200, 120, 0), (160, 0, 160)


def _storage_page(mb: int, write_chunk: str) -> web.Response:
    def show(outcome: str, rgb: tuple[int, int, int]) -> str:
        return (f"document.body.innerHTML = '<div id={outcome} style=\\'position:absolute;left:100px;top:100px;"
                f"width:200px;height:200px;background:rgb{rgb}\\'></div>';")

    return _html("<p>writing</p><script>(async () => { const keep = []; let written = 0; try {"
                 # Random bytes: IndexedDB compresses what it stores, and a constant fill is next to nothing.
                 f"  let seed = 88172645; while (written < {mb}) {{ const chunk = new Uint8Array(16 << 20);"
                 "    const words = new Uint32Array(chunk.buffer);"
                 "    for (let i = 0; i < words.length; i++) { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;"
                 "      words[i] = seed; }"
                 f"    {write_chunk} written += 16; }}"
                 f"  document.title = 'stored ' + written; {show('stored', STORED_RGB)}"
                 "} catch (e) { document.title = e.name + ' after ' + written;"
                 f"  if (e.name === 'QuotaExceededError') {{ {show('quota', QUOTA_RGB)} }}"
                 f"  else {{ {show('failed', FAILED_RGB)} }} }}"
                 "})();</script>")


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
