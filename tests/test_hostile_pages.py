"""Pages that replace globals cannot break their capture (Step 15, point 1).

The service's own page scripts run in an isolated world, so what a page does to
its JavaScript world (globals, prototypes, DOM methods) is not what the service
calls.  Each page here does one hostile thing of the security review, or one of
the same family; the capture answers 200 with the right pixels and is charged.
The caller's ``js`` still runs in the page's own world.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from screenshot_service.browser.pool import BrowserPool
from tests.conftest import Service, image_of
from tests.jobs_helpers import settings_for, start_app

if TYPE_CHECKING:
    from tests.conftest import TestSite

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
TALL = ('<body style="margin:0"><div style="height:2000px;background:rgb(0,0,255)"></div>'
        '<div style="height:100px;background:rgb(255,0,0)"></div>{script}</body>')
BOX = ('<body style="margin:0;background:#fff"><div id="box" style="position:absolute;left:37px;top:50px;'
       'width:123px;height:45px;background:rgb(255,0,0)"></div>{script}</body>')


async def _post(service: Service, html: str, **options: Any) -> Any:
    body = {"html": html, "width": 400, "height": 300, **options}
    return await service.client.post("/v1/screenshot", json=body, headers=service.auth())


async def _image(service: Service, html: str, **options: Any) -> Image.Image:
    response = await _post(service, html, response_type="image", **options)
    assert response.status == 200, await response.text()
    return image_of(await response.read()).convert("RGB")


async def _used(service: Service) -> int:
    response = await service.client.get("/v1/usage", headers=service.auth())
    assert response.status == 200, await response.text()
    return int((await response.json())["quota"]["used"])


def _assert_full_page(image: Image.Image) -> None:
    assert image.size == (400, 2100)
    assert image.getpixel((10, 10)) == BLUE and image.getpixel((10, 1990)) == BLUE
    assert image.getpixel((10, 2050)) == RED


def _assert_box(image: Image.Image) -> None:
    assert image.size == (123, 45)
    assert {image.getpixel((x, y)) for x in (0, 61, 122) for y in (0, 22, 44)} == {RED}


async def test_a_page_replacing_string_is_captured_with_its_title(service: Service) -> None:
    html = "<title>Hostile</title><script>String = () => 42;</script><p>hello</p>"
    response = await _post(service, html, wait_until="ready")
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["title"] == "Hostile"
    assert "ready_timeout" not in [w["code"] for w in body["warnings"]]
    assert await _used(service) == 1


async def test_a_page_nulling_array_filter_is_captured_whole(service: Service) -> None:
    image = await _image(service, TALL.format(script="<script>Array.prototype.filter = null;</script>"),
                         full_page=True)
    _assert_full_page(image)
    assert await _used(service) == 1


async def test_a_page_whose_scroll_functions_throw_is_captured_whole(service: Service) -> None:
    script = ("<script>window.scrollTo = window.scroll = Element.prototype.scrollTo = () => { throw new Error('no'); };"
              "window.requestAnimationFrame = () => { throw new Error('no'); };</script>")
    _assert_full_page(await _image(service, TALL.format(script=script), full_page=True))
    assert await _used(service) == 1


async def test_a_page_breaking_math_floor_gives_the_elements_box(service: Service) -> None:
    script = "<script>Math.floor = () => 'x'; Math.ceil = () => 'y';</script>"
    _assert_box(await _image(service, BOX.format(script=script), selector="#box"))
    assert await _used(service) == 1


async def test_a_page_faking_element_geometry_gives_the_real_box(service: Service) -> None:
    script = ("<script>Object.defineProperty(Element.prototype, 'getBoundingClientRect', {value: () =>"
              " ({left: NaN, top: 'x', right: 1e308, bottom: -1})});"
              "Element.prototype.scrollIntoView = () => { throw new Error('no'); };"
              "JSON.stringify = JSON.parse = () => { throw new Error('no'); };</script>")
    _assert_box(await _image(service, BOX.format(script=script), selector="#box"))
    assert await _used(service) == 1


async def test_a_page_that_removes_its_root_element_is_captured(service: Service) -> None:
    html = "<p>gone</p><script>document.documentElement.remove();</script>"
    image = await _image(service, html, full_page=True, disable_animations=True)
    assert image.size == (400, 300)
    assert await _used(service) == 1


async def test_a_page_with_a_throwing_get_animations_is_frozen_at_the_end(service: Service) -> None:
    html = ('<style>@keyframes turn { from { background: rgb(255,0,0) } to { background: rgb(0,0,255) } }'
            '#a { width: 100px; height: 100px; animation: turn 100s linear forwards }</style>'
            '<body style="margin:0"><div id="a"></div>'
            "<script>document.getAnimations = () => { throw new Error('no'); };</script></body>")
    image = await _image(service, html, disable_animations=True)
    assert image.getpixel((50, 50)) == BLUE
    assert await _used(service) == 1


async def test_a_late_element_is_awaited_on_a_page_without_promise_or_observers(service: Service) -> None:
    # The box comes with the page's own timer; everything a waiting script would use is broken.
    script = ("<script>const add = () => { const d = document.createElement('div'); d.id = 'box';"
              " d.style.cssText = 'position:absolute;left:37px;top:50px;width:123px;height:45px;"
              "background:rgb(255,0,0)'; document.body.appendChild(d); };"
              "setTimeout(add, 100);"
              "document.querySelector = document.querySelectorAll = () => null;"
              "window.MutationObserver = function () { throw new Error('no'); };"
              "window.requestAnimationFrame = () => { throw new Error('no'); };"
              "window.getComputedStyle = () => ({visibility: 'hidden'});"
              "window.Promise = function () { throw new Error('no'); };</script>")
    html = '<body style="margin:0;background:#fff">' + script + "</body>"
    _assert_box(await _image(service, html, wait_for_selector="#box", selector="#box"))
    assert await _used(service) == 1


async def test_a_page_breaking_document_and_node_methods_still_gets_our_styles(service: Service) -> None:
    script = ("<script>document.close = document.write = document.open = () => { throw new Error('no'); };"
              "document.createElement = () => { throw new Error('no'); };"
              "Node.prototype.appendChild = () => { throw new Error('no'); };</script>")
    html = (BOX.format(script=script)
            + '<div id="hide" style="position:absolute;left:0;top:200px;width:50px;height:50px;background:red"></div>')
    image = await _image(service, html, css="#box { background: rgb(0,0,255) !important }",
                         hide_selectors=["#hide"], block_cookie_banners=True, disable_animations=True)
    assert image.getpixel((60, 60)) == BLUE
    assert image.getpixel((20, 220)) == WHITE
    assert await _used(service) == 1


async def test_the_callers_js_still_runs_in_the_pages_own_world(service: Service) -> None:
    html = ('<body style="margin:0;background:#fff"><script>window.paint = () =>'
            " { document.body.style.background = 'rgb(0,0,255)'; };</script></body>")
    assert (await _image(service, html, js="paint()")).getpixel((10, 10)) == BLUE
    response = await _post(service, html, js="notDefinedByThePage()")
    body = await response.json()
    assert response.status == 400 and "js" in body["error"]["details"]["fields"], body


async def test_a_hostile_page_as_a_job_succeeds_and_is_charged(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool
) -> None:
    svc = await start_app(aiohttp_client, settings_for(tmp_path, test_site), test_site, shared_pool)
    script = ("<script>String = () => 42; Array.prototype.filter = null; Math.floor = () => 'x';"
              "window.scrollTo = () => { throw new Error('no'); };</script>")
    body = {"html": TALL.format(script=script), "width": 400, "height": 300, "full_page": True}
    response = await svc.client.post("/v1/jobs", json=body, headers=svc.auth())
    assert response.status == 202, await response.text()
    job = await svc.wait_done(str((await response.json())["id"]))
    assert job["status"] == "succeeded", job
    assert (job["result"]["width"], job["result"]["height"]) == (400, 2100)
    assert await svc.credits_used() == 1


async def test_a_page_cancelling_every_timer_is_still_captured_whole(service: Service) -> None:
    # Timers and animation frames belong to the page's window, whatever world set them.
    script = ("<script>const cancel = () => { for (let i = 0; i < 3000; i++) { clearTimeout(i); cancelAnimationFrame(i); } };"
              "new MutationObserver(cancel).observe(document, {subtree: true, childList: true, attributes: true});"
              "const loop = () => { cancel(); requestAnimationFrame(loop); }; loop(); setInterval(cancel, 1);</script>")
    image = await _image(service, TALL.format(script=script), full_page=True, timeout=10)
    _assert_full_page(image)
    assert await _used(service) == 1
