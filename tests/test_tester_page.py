"""The API Tester page at /, driven in a real headless Chromium: type, click, see the image.

The user's browser is a Chromium of the test's own (pyppeteer, as a user would
drive it); the service captures with its pools.  Every request that browser
makes is recorded, so the tests can compare what the page shows with what it
sent, and check that nothing left for another origin and no secret left at all.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyppeteer
import pytest
from pyppeteer.network_manager import Request
from pyppeteer.page import Page
from yarl import URL

from screenshot_service.api.tester import CSP
from screenshot_service.browser.executable import find_executable
from screenshot_service.capture.action_parsers import STEP_TEMPLATES
from screenshot_service.capture.options import OPTION_GROUPS, OPTIONS
from screenshot_service.capture.parsers import schema_of
from screenshot_service.signing import sign
from tests.conftest import Service, image_of
from tests.conftest import TestSite as Site
from tests.scene_site import SCENES, Scene
from tests.site import PAINT_RGB
from tests.test_metrics import start_service

SHOT_PATH = Path("/tmp/tester-page.png")
SHOT_PATH_DARK = Path("/tmp/tester-page-dark.png")
BACKGROUND = (0, 0, 255)  # the css option paints the page blue; /paint's square stays green


@dataclass
class UserBrowser:
    """A page of the user's own browser, and every request it made."""

    page: Page
    requests: list[Request] = field(default_factory=list)

    def sent(self, path: str) -> list[Request]:
        return [r for r in self.requests if urlsplit(r.url).path == path]


@pytest.fixture
async def user() -> AsyncIterator[UserBrowser]:
    """A real Chromium of the test's, not one of the service's."""
    browser = await pyppeteer.launch(
        executablePath=find_executable(), args=["--no-sandbox"], handleSIGINT=False,
        handleSIGTERM=False, handleSIGHUP=False, autoClose=False,
    )
    try:
        page = await browser.newPage()
        seen = UserBrowser(page)
        page.on("request", seen.requests.append)
        yield seen
    finally:
        await browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def running_tester(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, make_pool: Callable[..., Any]
) -> tuple[Service, Any, str]:
    """A service whose own pool may reach it, so it can photograph its own page."""
    # The port must be known before the pool and settings exist: both must allow it.
    port = free_port()
    allow = [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{port}"]
    pool = await make_pool(allow=allow, pool_size=2, max_queue=4)
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, pool, port=port, egress={"allow": allow})
    return svc, pool, f"http://127.0.0.1:{port}"


async def open_tester(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, pool: Any, user: UserBrowser, **sections: Any
) -> tuple[Service, str]:
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, pool, **sections)
    base = str(svc.client.make_url("")).rstrip("/")
    opened = await user.page.goto(base + "/", waitUntil="load")
    assert opened is not None and opened.status == 200
    return svc, base


async def text_of(page: Page, element_id: str) -> str:
    return str(await page.evaluate(f"document.getElementById({element_id!r}).textContent"))


async def fill(page: Page, name: str, value: str) -> None:
    """Type into an option's field as a user would: open its group first."""
    selector = f"#opt-{name}"
    opened = await page.evaluate(f"document.querySelector({selector!r}).closest('details').open")
    if not opened:
        group = await page.evaluate(f"document.querySelector({selector!r}).closest('details').dataset.group")
        await page.click(f"details[data-group={json.dumps(group)}] > summary")
    kind = await page.evaluate(f"document.querySelector({selector!r}).closest('[data-option]').dataset.kind")
    if kind == "flag":
        await page.click(selector)
    elif kind == "choice":
        await page.select(selector, value)
    else:
        await page.click(selector, clickCount=3)
        await page.type(selector, value)


async def wait_state(page: Page, *states: str) -> str:
    await page.waitForFunction(f"{json.dumps(list(states))}.includes(document.body.dataset.state)", timeout=20000)
    return str(await page.evaluate("document.body.dataset.state"))


def only_from(base: str, requests: list[Request]) -> None:
    urls = [r.url for r in requests]
    assert urls and all(u.startswith(base + "/") or u.startswith(("data:", "blob:")) for u in urls), urls


async def test_page_is_self_contained_with_a_strict_csp(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any
) -> None:
    svc = await start_service(aiohttp_client, tmp_path / "svc", test_site, shared_pool)
    response = await svc.client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'self' 'unsafe-inline'" in CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    # No external asset of any kind: no CDN, no web font, no remote script or stylesheet.
    for needle in ("<link rel=\"stylesheet\"", "<script src", "@import", "@font-face", "//cdn", "googleapis", "url(http"):
        assert needle not in html, needle
    assert "/v1/screenshot" in html and "/*OPTIONS*/" not in html


async def test_the_form_is_the_option_table(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any, user: UserBrowser
) -> None:
    """One field per option, in its group, with its description and range; no option left out."""
    _, base = await open_tester(aiohttp_client, tmp_path, test_site, shared_pool, user)
    shown = await user.page.evaluate("""[...document.querySelectorAll('details.group')].map(group => ({
        title: group.querySelector('summary').firstChild.textContent,
        options: [...group.querySelectorAll('[data-option]')].map(box => ({
            name: box.dataset.option, text: box.textContent,
            control: box.querySelector('input, select, textarea').id,
            choices: [...box.querySelectorAll('option')].map(o => o.value).filter(Boolean)}))}))""", force_expr=True)
    assert {o["name"] for g in shown for o in g["options"]} == set(OPTIONS)
    assert [(g["title"], tuple(o["name"] for o in g["options"])) for g in shown] == list(OPTION_GROUPS)
    for option in (o for g in shown for o in g["options"]):
        name, text = option["name"], option["text"]
        assert option["control"] == f"opt-{name}"
        assert OPTIONS[name].description.replace("`", "") in text, name  # `code` is shown as code
        schema = schema_of(OPTIONS[name].parse)
        if "minimum" in schema:
            lo, hi = (int(v) if float(v).is_integer() else v for v in (schema["minimum"], schema["maximum"]))
            assert f"{lo}\u2013{hi}" in text, (name, text)
        if "enum" in schema:
            assert option["choices"] == schema["enum"], name
    width = next(o for g in shown for o in g["options"] if o["name"] == "width")
    assert "100\u20133840" in width["text"] and "default 1280" in width["text"]
    # The actions are an editable list: each button appends its kind's step; the text stays editable.
    await user.page.click('details[data-group="Actions"] > summary')
    for kind in ("click", "wait"):
        await user.page.click(f'[data-option="actions"] button[data-step="{kind}"]')
    assert json.loads(await text_of(user.page, "request"))["actions"] == [
        STEP_TEMPLATES["click"], STEP_TEMPLATES["wait"]]
    await user.page.focus("#opt-actions")  # select all of the list and type over it, as a user would
    await user.page.keyboard.down("Control")
    await user.page.keyboard.press("a")
    await user.page.keyboard.up("Control")
    await user.page.keyboard.type('[{"press": "Tab"}]')
    await user.page.click('[data-option="actions"] button[data-step="hover"]')
    assert json.loads(await text_of(user.page, "request"))["actions"] == [{"press": "Tab"}, STEP_TEMPLATES["hover"]]
    only_from(base, user.requests)


async def test_capture_from_the_page_in_a_real_browser(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any, user: UserBrowser
) -> None:
    svc, base = await open_tester(aiohttp_client, tmp_path, test_site, shared_pool, user)
    page = user.page
    await page.type("#key", svc.key)
    options = {
        "url": test_site.url + "/paint", "width": "640", "height": "480", "device_scale_factor": "2",
        "wait_until": "ready", "css": "body { background: rgb(0, 0, 255) !important }",
        "hide_selectors": ".ad\n#banner", "timezone": "Europe/Paris", "disable_animations": "", "dark_mode": "",
    }
    for name, value in options.items():
        await fill(page, name, value)
    expected = {"url": options["url"], "width": 640, "height": 480, "device_scale_factor": 2, "wait_until": "ready",
                "hide_selectors": [".ad", "#banner"], "css": options["css"], "disable_animations": True,
                "dark_mode": True, "timezone": "Europe/Paris"}
    shown_body = await text_of(page, "request")
    assert json.loads(shown_body) == expected
    assert await text_of(page, "request-line") == "POST /v1/screenshot"
    curl = await text_of(page, "curl")
    assert "$API_KEY" in curl and svc.key not in curl
    await page.click("#include_key")
    curl = await text_of(page, "curl")

    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")

    # The panel showed the request exactly as it went out: the same body, byte for byte,
    # and the curl names the same method, URL, headers and body.
    [sent] = user.sent("/v1/screenshot")
    assert sent.method == "POST" and sent.url == base + "/v1/screenshot"
    assert sent.postData == shown_body
    argv = shlex.split(curl.replace("\\\n", " "))  # a shell joins the continued lines
    assert argv[:5] == ["curl", "-sS", "-X", "POST", base + "/v1/screenshot"]
    curl_headers = dict(argv[i + 1].split(": ", 1) for i, arg in enumerate(argv) if arg == "-H")
    assert curl_headers == {"Content-Type": "application/json", "Authorization": f"Bearer {svc.key}"}
    assert all(sent.headers[name.lower()] == value for name, value in curl_headers.items())
    assert argv[argv.index("--data-raw") + 1] == sent.postData

    # What the user sees: the image at twice the viewport, the response JSON and its facts.
    natural = await page.evaluate("[document.getElementById('shot').naturalWidth,"
                                  " document.getElementById('shot').naturalHeight]")
    assert natural == [1280, 960]
    result = json.loads(await text_of(page, "json"))
    assert result["format"] == "png" and result["url"].startswith(base + "/v1/files/")
    assert await page.evaluate("document.getElementById('shot').src") == result["url"]
    assert "format" in await text_of(page, "facts")
    stored = await svc.client.get(urlsplit(result["url"]).path)
    image = image_of(await stored.read()).convert("RGB")
    assert image.size == (1280, 960)
    assert image.getpixel((400, 400)) == PAINT_RGB  # the square (100-300 css px) at scale 2
    assert image.getpixel((40, 40)) == BACKGROUND  # the css option applied
    assert image.getpixel((1200, 900)) == BACKGROUND

    # The curl is a working command: pasted into a shell, it gets the same kind of capture.
    proc = await asyncio.create_subprocess_exec("bash", "-c", curl, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    again = json.loads(out)
    assert proc.returncode == 0 and again["width"] == result["width"] and again["format"] == "png", again

    # A bad key: the error is shown as a card with status and code, and as JSON.
    await page.click("#key", clickCount=3)
    await page.type("#key", "sk_not_a_real_key")
    await page.click("#capture")
    assert await wait_state(page, "error") == "error"
    assert "401 · invalid_api_key" in await text_of(page, "error")
    assert json.loads(await text_of(page, "json"))["error"]["code"] == "invalid_api_key"
    assert await page.evaluate("document.getElementById('shot-link').hidden")

    only_from(base, user.requests)  # no CDN, no fonts: everything from the service itself


async def shown_size(page: Page) -> list[int]:
    return list(await page.evaluate("[document.getElementById('shot').naturalWidth,"
                                    " document.getElementById('shot').naturalHeight]"))


async def test_every_response_type_and_a_job_from_the_page(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any, user: UserBrowser
) -> None:
    svc, base = await open_tester(aiohttp_client, tmp_path, test_site, shared_pool, user,
                                  jobs={"webhook_attempts": 1, "webhook_timeout_seconds": 2})
    page = user.page
    await page.type("#key", svc.key)
    for name, value in {"url": test_site.url + "/paint", "width": "320", "height": "240"}.items():
        await fill(page, name, value)

    # image: the bytes themselves, shown from a blob, their headers in the JSON view.
    await fill(page, "response_type", "image")
    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")
    assert await shown_size(page) == [320, 240]
    assert json.loads(await text_of(page, "json"))["headers"]["Content-Type"] == "image/png"
    assert "-o capture.png" in await text_of(page, "curl")

    # base64: the embedded image, shortened in the JSON view.
    await fill(page, "response_type", "base64")
    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")
    assert await shown_size(page) == [320, 240]
    assert await page.evaluate("document.getElementById('shot').src.startsWith('data:image/png;base64,')")
    shown = json.loads(await text_of(page, "json"))
    assert shown["width"] == 320 and shown["image_base64"].endswith("characters)")

    # webhook_url: an asynchronous job, polled until it ends, then its result shown.
    await fill(page, "response_type", "")
    await fill(page, "webhook_url", test_site.url + "/hook")
    assert await text_of(page, "request-line") == "POST /v1/jobs"
    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")
    job = json.loads(await text_of(page, "json"))
    assert job["status"] == "succeeded" and job["result"]["width"] == 320
    assert await shown_size(page) == [320, 240]
    [sent] = user.sent("/v1/jobs")
    assert sent.method == "POST" and json.loads(sent.postData)["webhook_url"] == test_site.url + "/hook"
    only_from(base, user.requests)


def _link_params(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query, keep_blank_values=True)


async def test_signed_link_built_in_the_page(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any, user: UserBrowser
) -> None:
    svc, base = await open_tester(aiohttp_client, tmp_path, test_site, shared_pool, user)
    page = user.page
    record = await svc.state.key_by_id(svc.key_id)
    assert record is not None and record.signing_secret
    secret = record.signing_secret
    # Text that percent-encoding must get right: spaces, quotes, parentheses, '*', '!', non-ASCII.
    css = "body{background:rgb(0, 0, 255)!important} /* l'été (*) */"
    for name, value in {"url": test_site.url + "/paint?a=1&b=(x y)", "width": "500", "height": "400",
                        "css": css, "hide_selectors": "#nothing[title='a b']"}.items():
        await fill(page, name, value)
    assert "key id" in await text_of(page, "sign-note")
    await page.type("#key_id", svc.key_id)
    await page.type("#signing_secret", secret)
    await page.type("#expires_in", "600")
    # The link is signed asynchronously after each keystroke: wait for the newest one.
    await page.waitForFunction("!document.getElementById('sign-card').dataset.pending"
                               " && document.getElementById('signed').textContent.includes('signature=')", timeout=5000)
    link = await text_of(page, "signed")

    assert link.startswith(base + "/v1/screenshot?")
    params = _link_params(link)
    names = [name for name, _ in params]
    assert names.count("signature") == 1 and "api_key" not in names and "response_type" not in names
    assert dict(params)["css"] == css and dict(params)["key_id"] == svc.key_id
    assert 540 <= int(dict(params)["expires"]) - time.time() <= 601  # "Expires in 600"
    # The page's Web Crypto signature is the one the server's own signing code computes.
    assert dict(params)["signature"] == sign(secret, [p for p in params if p[0] != "signature"])

    # The link, as an <img> in the page would load it: the image (response_type defaults to image).
    await page.click("#sign-load")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "error")
    natural = await page.evaluate("[document.getElementById('shot').naturalWidth,"
                                  " document.getElementById('shot').naturalHeight]")
    assert natural == [500, 400]
    # And fetched as it is, without any key: the image from the real service.
    response = await svc.client.get(URL(link[len(base):], encoded=True))
    assert response.status == 200 and response.content_type == "image/png", await response.text()
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (500, 400) and image.getpixel((200, 200)) == PAINT_RGB and image.getpixel((20, 20)) == BACKGROUND
    # Tampered (another width): refused.
    tampered = link[len(base):].replace("width=500", "width=501")
    assert tampered != link[len(base):]
    response = await svc.client.get(URL(tampered, encoded=True))
    assert response.status == 401 and (await response.json())["error"]["code"] == "invalid_signature"

    # Options a signed link may not carry: no link, and the page says why.
    await fill(page, "headers", '{"X-Test": "1"}')
    await page.waitForFunction("!document.getElementById('sign-card').dataset.pending", timeout=5000)
    assert await text_of(page, "signed") == ""
    assert "cannot carry headers" in await text_of(page, "sign-note")

    # The secret never left the page: in no URL, header or body of any request it made.
    for request in user.requests:
        carried = [request.url, json.dumps(request.headers), request.postData or ""]
        assert not any(secret in text for text in carried), request.url
    assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
    only_from(base, user.requests)


def _self_portrait_js(key: str) -> str:
    """Fill in the key, press Capture and wait for the result: the capture then shows a used page."""
    return (
        "(async () => {"
        f"document.getElementById('key').value = {json.dumps(key)};"
        "document.getElementById('capture').click();"
        "const end = Date.now() + 15000;"
        "while (!['done', 'error'].includes(document.body.dataset.state) && Date.now() < end)"
        "  await new Promise(resolve => setTimeout(resolve, 50));"
        "})()"
    )


async def test_the_service_photographs_its_own_tester_page(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, make_pool: Callable[..., Any]
) -> None:
    svc, _, base = await running_tester(aiohttp_client, tmp_path, test_site, make_pool)
    # The form is prefilled from the page's query string: it captures the tester page itself.
    page_url = f"{base}/?url={base}/&width=1280&height=800"
    for dark, path in ((False, SHOT_PATH), (True, SHOT_PATH_DARK)):
        response = await svc.client.post("/v1/screenshot", headers=svc.auth(), json={
            "url": page_url, "width": 1440, "height": 900, "full_page": True, "dark_mode": dark,
            "js": _self_portrait_js(svc.key), "response_type": "image",
        })
        assert response.status == 200, await response.text()
        data = await response.read()
        path.write_bytes(data)
        image = image_of(data).convert("RGB")
        assert image.width == 1440 and image.height >= 900
        # A used page: the embedded screenshot and the coloured JSON make it far from blank.
        colours = image.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, len(colours)
        background = image.getpixel((5, 5))
        assert isinstance(background, tuple) and (sum(background) < 150) == dark, background  # dark theme follows prefers-color-scheme


async def test_a_capture_compared_with_the_previous_one_shows_the_marked_image(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: Any, user: UserBrowser
) -> None:
    svc, _ = await open_tester(aiohttp_client, tmp_path, test_site, shared_pool, user)
    page = user.page
    SCENES["tester"] = Scene(box=(0, 100, 400, 200), box_colour=(0, 90, 200))
    await page.type("#key", svc.key)
    for name, value in {"url": test_site.url + "/scene?name=tester", "width": "400", "height": "300",
                        "compare_to": "previous"}.items():
        await fill(page, name, value)
    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")
    assert await page.evaluate("document.getElementById('diff').hidden")  # no baseline yet
    assert "no_baseline" in await text_of(page, "facts")

    SCENES["tester"].box = (0, 100, 200, 200)  # the right half of the box is gone: 200 x 200 of 400 x 300
    await page.click("#capture")
    assert await wait_state(page, "done", "error") == "done", await text_of(page, "json")
    result = json.loads(await text_of(page, "json"))
    assert not await page.evaluate("document.getElementById('diff').hidden")
    assert (await text_of(page, "diff-ratio")).startswith("33.333 % of pixels changed")
    await page.waitForFunction("document.getElementById('diff-shot').complete", timeout=10000)
    assert await page.evaluate("document.getElementById('diff-shot').src") == result["diff"]["image_url"]
    assert await page.evaluate("document.getElementById('diff-shot').naturalWidth") == 400
    assert "changed" in await text_of(page, "facts")
