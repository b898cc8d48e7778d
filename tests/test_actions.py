"""``actions`` and ``wait_for_function`` (SPEC §3.2), end to end on real Chromium, proven by pixels.

The pages turn a box green only on what a user's input would cause: a click whose event is
trusted, the ``:hover`` state, key presses that fire keydown and input, a form's implicit
submission on Enter.  A DOM shortcut (``el.click()``, setting ``value``) would leave them red or blue.
"""

from __future__ import annotations

import json
import time
from typing import Any

from PIL import Image

from screenshot_service.capture.action_parsers import KINDS, STEP_TEMPLATES, actions
from screenshot_service.signing import signed_url
from tests.conftest import Service, image_of
from tests.jobs_helpers import poll_until_done
from tests.site import PAINT_RGB

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

# #box turns green on a trusted click of #btn (blue on an untrusted one); #hov is green while hovered;
# the form's input turns #typed green once it holds "hi there!é", with one keydown per ASCII character,
# and #sent green when the form is submitted from the keyboard (Enter).
PAGE = """<!doctype html><style>
body { margin: 0 } div, button, input { position: absolute; width: 100px; height: 50px; border: 0; padding: 0 }
#box { left: 0; top: 0; background: rgb(255,0,0) } #hov { left: 100px; top: 0; background: rgb(255,0,0) }
#hov:hover { background: rgb(0,255,0) } #typed { left: 200px; top: 0; background: rgb(255,0,0) }
#sent { left: 300px; top: 0; background: rgb(255,0,0) }
#btn { left: 0; top: 100px } #in { left: 100px; top: 100px } #gone { display: none }
</style>
<div id=box></div><div id=hov></div><div id=typed></div><div id=sent></div>
<button id=btn>go</button><form id=form><input id=in autocomplete=off></form><p id=gone>x</p>
<script>
let keys = 0;
btn.addEventListener('click', e => box.style.background = e.isTrusted ? 'rgb(0,255,0)' : 'rgb(0,0,255)');
document.getElementById('in').addEventListener('keydown', e => { if (e.isTrusted) keys++; });
document.getElementById('in').addEventListener('input', e => {
  if (e.target.value === 'hi there!\u00e9' && keys === 9) typed.style.background = 'rgb(0,255,0)';
});
form.addEventListener('submit', e => { e.preventDefault(); if (e.isTrusted) sent.style.background = 'rgb(0,255,0)'; });
</script>"""

# Bands of 1000 px: red, green, blue from the top.
TALL = """<!doctype html><body style='margin:0'><div style='height:1000px;background:rgb(255,0,0)'></div>
<div style='height:1000px;background:rgb(0,255,0)'></div><div id=third style='height:1000px;background:rgb(0,0,255)'></div>
<div style='height:1000px'></div>"""

# Green under a red cover: what appears later by a timer, or what the timer takes away.
LATE = """<!doctype html><body style='margin:0'><div id=cover style='width:100px;height:100px;background:rgb(255,0,0)'></div>
<script>setTimeout(() => {
  const late = document.createElement('div'); late.id = 'late'; late.style.cssText = 'width:100px;height:100px';
  document.body.style.background = 'rgb(0,255,0)'; window.ready = true;
  document.getElementById('cover').remove(); document.body.append(late);
}, 300);</script>"""


async def _post(service: Service, html: str, **options: Any) -> Any:
    body = {"html": html, "width": 400, "height": 300, **options}
    return await service.client.post("/v1/screenshot", json=body, headers=service.auth())


async def _image(service: Service, html: str, **options: Any) -> Image.Image:
    response = await _post(service, html, response_type="image", **options)
    assert response.status == 200, await response.text()
    return image_of(await response.read()).convert("RGB")


async def _error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return dict((await response.json())["error"])


async def _used(service: Service) -> int:
    response = await service.client.get("/v1/usage", headers=service.auth())
    return int((await response.json())["quota"]["used"])


async def test_click_hover_type_and_press_are_trusted_input(service: Service) -> None:
    image = await _image(service, PAGE, actions=[
        {"click": "#btn"},
        {"type": {"selector": "#in", "text": "hi there!\u00e9"}},  # é: no US key, inserted
        {"press": "Enter"},
        {"hover": "#hov"},
    ])
    assert [image.getpixel((x, 25)) for x in (50, 150, 250, 350)] == [GREEN, GREEN, GREEN, GREEN]


async def test_press_moves_focus_and_edits_as_keys_do(service: Service) -> None:
    page = """<!doctype html><style>body { margin: 0 } input { display: block; width: 100px; height: 40px; border: 0;
      background: rgb(255,0,0); color: transparent; caret-color: transparent } input:focus { outline: none }
      #b:focus { background: rgb(0,255,0) } div { width: 100px; height: 40px; background: rgb(255,0,0) }</style>
      <input id=a><input id=b><div id=ok></div><div id=space></div>
      <script>a.addEventListener('input', () => { if (a.value === 'xz') ok.style.background = 'rgb(0,255,0)'; });
      b.addEventListener('keydown', e => {
        if (e.key === ' ' && e.code === 'Space' && e.isTrusted) space.style.background = 'rgb(0,255,0)'; });</script>"""
    image = await _image(service, page, actions=[
        {"type": {"selector": "#a", "text": "xyz"}}, {"press": "ArrowLeft"}, {"press": "Backspace"}, {"press": "Tab"},
        {"press": "Space"}])
    assert [image.getpixel((50, y)) for y in (60, 100, 140)] == [GREEN, GREEN, GREEN]


async def test_without_actions_the_page_stays_as_loaded(service: Service) -> None:
    image = await _image(service, PAGE)
    assert [image.getpixel((x, 25)) for x in (50, 150, 250, 350)] == [RED, RED, RED, RED]


async def test_scroll_to_a_position_and_to_an_element(service: Service) -> None:
    assert (await _image(service, TALL, actions=[{"scroll_to": {"y": 1000}}])).getpixel((10, 10)) == GREEN
    assert (await _image(service, TALL, actions=[{"scroll_to": "#third"}])).getpixel((10, 10)) == BLUE


async def test_waits_for_a_selector_its_absence_and_a_function(service: Service) -> None:
    for step in ({"wait_for_selector": "#late"}, {"wait_for_selector_hidden": "#cover"},
                 {"wait_for_function": "window.ready === true"}, {"wait_for_function": "() => window.ready"}):
        assert (await _image(service, LATE, actions=[step])).getpixel((10, 10)) == GREEN, step
    assert (await _image(service, LATE, wait_for_function="window.ready")).getpixel((10, 10)) == GREEN


async def test_a_wait_never_met_ends_at_the_deadline(service: Service) -> None:
    # The page stops every timer it can: the poll is ours, and the request's deadline ends it.
    stopped = "<script>window.setTimeout = window.setInterval = window.requestAnimationFrame = () => 0;</script><p id=stay>x</p>"
    for options in ({"wait_for_function": "false"}, {"actions": [{"wait_for_selector_hidden": "#stay"}]},
                    {"actions": [{"wait_for_function": "new Promise(() => {})"}]}):
        error = await _error(await _post(service, stopped, timeout=1, **options), 504)
        assert error["code"] == "capture_timeout", error
    assert await _used(service) == 0


async def test_wait_waits_at_least_its_time(service: Service) -> None:
    began = time.monotonic()
    await _image(service, "<p>x</p>", actions=[{"wait": 600}])
    assert time.monotonic() - began >= 0.6


async def test_a_failing_step_is_action_failed_naming_it_and_not_charged(service: Service) -> None:
    cases = [
        ([{"click": "#btn"}, {"click": "#nope"}], 1, "click", "selector_not_found"),
        ([{"hover": "#gone"}], 0, "hover", "not_visible"),
        ([{"scroll_to": "#nope"}], 0, "scroll_to", "selector_not_found"),
        ([{"wait": 1}, {"wait": 1}, {"wait_for_function": "(() => { throw new Error('boom') })()"}], 2,
         "wait_for_function", "js_error"),
        ([{"wait_for_function": "syntax error here"}], 0, "wait_for_function", "js_error"),
        ([{"wait_for_selector": "#btn", "timeout": 5000}, {"wait_for_selector": "#never", "timeout": 100}], 1,
         "wait_for_selector", "timeout"),
    ]
    for steps, index, kind, reason in cases:
        error = await _error(await _post(service, PAGE, actions=steps))
        assert error["code"] == "action_failed", error
        assert error["details"] == {"index": index, "action": kind, "reason": reason}, error
    error = await _error(await _post(service, PAGE, wait_for_function="nope.nothing"))
    assert error["details"] == {"index": None, "action": "wait_for_function", "reason": "js_error"}, error
    assert "nope is not defined" in error["message"]
    assert await _used(service) == 0
    await _image(service, PAGE, actions=[{"click": "#btn"}])  # a success is charged
    assert await _used(service) == 1


async def test_bad_steps_are_400s_naming_the_step(service: Service) -> None:
    cases: list[tuple[Any, str]] = [
        ([{"click": "#a"}, {"jump": "#b"}], "actions[1]"),
        ([{"click": "#a", "hover": "#b"}], "actions[0]"),
        (["click"], "actions[0]"),
        ([{"click": 5}], "actions[0]"),
        ([{"click": "#" + "a" * 2000}], "actions[0]"),
        ([{"type": {"selector": "#in"}}], "actions[0]"),
        ([{"press": "Hyper"}], "actions[0]"),
        ([{"scroll_to": {"x": 5}}], "actions[0]"),
        ([{"wait": 10001}], "actions[0]"),
        ([{"wait": "500"}], "actions[0]"),
        ([{"wait": 1}] * 21, "actions"),
        ([{"click": "#a", "timeout": 500}], "actions[0]"),
        ([{"wait_for_selector": "#a", "timeout": 0}], "actions[0]"),
        ([{"timeout": 500}], "actions[0]"),
        ({"click": "#a"}, "actions"),
        ([{"click": "div["}], "actions[0]"),  # not a selector: found only by the browser
    ]
    for steps, field in cases:
        error = await _error(await _post(service, PAGE, actions=steps))
        assert error["code"] == "invalid_parameter" and list(error["details"]["fields"]) == [field], (steps, error)
    error = await _error(await _post(service, PAGE, wait_for_function=" "))
    assert list(error["details"]["fields"]) == ["wait_for_function"]
    assert await _used(service) == 0


async def test_actions_in_a_query_string_as_json_text(service: Service) -> None:
    ok = await service.shot("/paint", response_type="image",
                            actions=json.dumps([{"wait_for_selector": "#box"}, {"hover": "#box"}]))
    assert ok.status == 200, await ok.text()
    assert image_of(await ok.read()).convert("RGB").getpixel((150, 150)) == PAINT_RGB
    error = await _error(await service.shot("/paint", actions=json.dumps([{"click": "#nope"}])))
    assert error["details"] == {"index": 0, "action": "click", "reason": "selector_not_found"}
    error = await _error(await service.shot("/paint", actions="[{click"))
    assert list(error["details"]["fields"]) == ["actions"]


async def test_actions_in_a_job(service: Service) -> None:
    async def run(**body: Any) -> dict[str, Any]:
        submitted = await service.client.post("/v1/jobs", json={"html": PAGE, **body}, headers=service.auth())
        assert submitted.status == 202, await submitted.text()
        job_id = (await submitted.json())["id"]
        return await poll_until_done(
            lambda: _json(service.client.get(f"/v1/jobs/{job_id}", headers=service.auth())))

    done = await run(actions=[{"click": "#btn"}])
    assert done["status"] == "succeeded", done
    stored = await service.client.get("/" + done["result"]["url"].split("/", 3)[3])
    assert image_of(await stored.read()).convert("RGB").getpixel((50, 25)) == GREEN
    failed = await run(actions=[{"hover": "#gone"}])
    assert failed["status"] == "failed", failed
    assert failed["error"]["details"] == {"index": 0, "action": "hover", "reason": "not_visible"}


async def _json(request: Any) -> Any:
    return await (await request).json()


async def test_actions_in_a_signed_link(service: Service) -> None:
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    base = str(service.client.make_url("")).rstrip("/")

    def link(steps: list[dict[str, Any]]) -> str:
        signed = signed_url(base, service.key_id, record.signing_secret, service.site.url + "/paint",
                            width=400, height=300, actions=steps)  # a list: JSON text in the link
        return "/" + signed.split("/", 3)[3]

    ok = await service.client.get(link([{"hover": "#box"}]))
    assert ok.status == 200, await ok.text()
    assert image_of(await ok.read()).convert("RGB").getpixel((150, 150)) == PAINT_RGB
    error = await _error(await service.client.get(link([{"wait": 1}, {"click": "#nope"}])))
    assert error["details"] == {"index": 1, "action": "click", "reason": "selector_not_found"}


async def test_a_click_on_a_link_captures_the_page_it_leads_to(service: Service) -> None:
    page = (f"<a id=go href='{service.site.url}/paint' style='display:block;width:400px;height:300px;"
            "background:rgb(255,0,0)'>go</a>")
    image = await _image(service, page, actions=[{"click": "#go"}])
    assert image.getpixel((150, 150)) == PAINT_RGB and image.getpixel((10, 10)) == (255, 255, 255)
    # The next step acts on the page the click led to.
    image = await _image(service, page, actions=[{"click": "#go"}, {"click": "#box"}, {"hover": "#box"}])
    assert image.getpixel((150, 150)) == PAINT_RGB


def test_the_testers_step_templates_are_valid_steps_and_each_kind_is_published() -> None:
    steps = list(STEP_TEMPLATES.values())
    assert [step.kind for step in actions(json.dumps(steps))] == list(STEP_TEMPLATES)
    assert sorted(STEP_TEMPLATES) == sorted(KINDS)  # a button for every kind
    shapes = actions.schema["items"]["oneOf"]  # type: ignore[attr-defined]
    assert sorted(shape["required"][0] for shape in shapes) == sorted(KINDS)
