"""block_resources and block_requests (SPEC §3.2) end to end: what the test site never saw,
what the pixels show, what blocked_requests counts, and the refusals."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.blocking_site import IMAGE_AT, IMAGE_RGB, SCRIPT_AT, SCRIPT_RGB, STYLE_AT, STYLE_RGB
from tests.conftest import Service, image_of

WHITE = (255, 255, 255)
PARTS = ("red.png", "style.css", "script.js", "font.ttf", "data.json", "xhr.txt")


async def _capture(service: Service, **params: Any) -> tuple[dict[str, Any], Any, set[str]]:
    """The JSON result, the image and which of the page's parts reached the site."""
    token = uuid.uuid4().hex
    response = await service.shot(f"/bm/{token}/page", wait_until="networkidle0", **params)
    body = await response.json()
    assert response.status == 200, body
    async with service.client.session.get(body["url"]) as stored:
        image = image_of(await stored.read())
    seen = {part for part in PARTS if service.site.log.count(f"/bm/{token}/{part}")}
    assert service.site.log.count(f"/bm/{token}/page") == 1  # the document itself is never blocked
    return body, image.convert("RGB"), seen


async def test_nothing_blocked_loads_every_part(service: Service) -> None:
    body, image, seen = await _capture(service)
    assert seen == set(PARTS) and body["blocked_requests"] == 0
    assert image.getpixel(IMAGE_AT) == IMAGE_RGB
    assert image.getpixel(STYLE_AT) == STYLE_RGB and image.getpixel(SCRIPT_AT) == SCRIPT_RGB


async def test_blocked_images_are_never_requested_nor_shown(service: Service) -> None:
    body, image, seen = await _capture(service, block_resources="image")
    assert seen == set(PARTS) - {"red.png"} and body["blocked_requests"] == 1
    assert image.getpixel(IMAGE_AT) == WHITE and image.getpixel(STYLE_AT) == STYLE_RGB


async def test_a_blocked_stylesheet_leaves_the_page_unstyled(service: Service) -> None:
    body, image, seen = await _capture(service, block_resources="stylesheet")
    assert "style.css" not in seen and body["blocked_requests"] == 1
    assert image.getpixel(STYLE_AT) == WHITE and image.getpixel(IMAGE_AT) == IMAGE_RGB


async def test_several_types_in_a_json_body(service: Service) -> None:
    token = uuid.uuid4().hex
    response = await service.client.post("/v1/screenshot", json={
        "url": f"{service.site.url}/bm/{token}/page", "api_key": service.key, "wait_until": "networkidle0",
        "block_resources": ["script", "fetch", "xhr", "font"]})
    body = await response.json()
    assert response.status == 200, body
    seen = {part for part in PARTS if service.site.log.count(f"/bm/{token}/{part}")}
    # The inline script still runs (only script.js is a request); its fetch and XHR are refused.
    assert seen == {"red.png", "style.css"} and body["blocked_requests"] == 4


@pytest.mark.parametrize(("pattern", "blocked"), [
    ("*.png", "red.png"),  # matches the URL without its query string
    ("*/red.png?v=1", "red.png"),  # "?" is a plain character, not DevTools' one-character wildcard
    ("*://127.0.0.1:*/bm/*/script.js", "script.js"),
    ("*/data.json*", "data.json"),
    ("http://127.0.0.1*xhr.txt", "xhr.txt"),
])
async def test_url_patterns_block_what_they_match(service: Service, pattern: str, blocked: str) -> None:
    body, image, seen = await _capture(service, block_requests=pattern)
    assert seen == set(PARTS) - {blocked} and body["blocked_requests"] == 1
    assert (image.getpixel(IMAGE_AT) == WHITE) == (blocked == "red.png")
    assert (image.getpixel(SCRIPT_AT) == WHITE) == (blocked == "script.js")


async def test_patterns_and_types_together_with_a_query_list(service: Service) -> None:
    body, _, seen = await _capture(service, block_resources="image,font",
                                   block_requests=json.dumps(["*/style.css", "*://*.example.com/*"]))
    assert seen == set(PARTS) - {"red.png", "font.ttf", "style.css"} and body["blocked_requests"] == 3


async def test_blocking_rules_are_part_of_the_cache_fingerprint(service: Service) -> None:
    token = uuid.uuid4().hex
    plain = await (await service.shot(f"/bm/{token}/page", cache="true")).json()
    blocked = await (await service.shot(f"/bm/{token}/page", cache="true", block_resources="image")).json()
    assert plain["cached"] is False and blocked["cached"] is False and blocked["blocked_requests"] == 1


@pytest.mark.parametrize(("params", "field", "why"), [
    ({"block_resources": "image,document"}, "block_resources", "'document' is not a resource type"),
    ({"block_resources": json.dumps([1])}, "block_resources", "1 is not a resource type"),
    ({"block_requests": json.dumps([f"*/{i}.png" for i in range(101)])}, "block_requests", "at most 100"),
    ({"block_requests": "*/" + "a" * 1100}, "block_requests", "at most 1024 characters"),
    ({"block_requests": "*"}, "block_requests", "every request"),
    ({"block_requests": "*/bm/*/page"}, "block_requests", "matches the url itself"),
])
async def test_bad_rules_are_400s_naming_the_field(service: Service, params: dict[str, str], field: str,
                                                   why: str) -> None:
    token = uuid.uuid4().hex
    response = await service.shot(f"/bm/{token}/page", **params)
    body = await response.json()
    assert response.status == 400, body
    assert service.site.log.count(f"/bm/{token}/page") == 0  # refused before any work
    assert body["error"]["code"] == "invalid_parameter" and why in body["error"]["details"]["fields"][field]


async def test_websockets_are_blocked_by_type(service: Service) -> None:
    for blocked in (False, True):
        token = uuid.uuid4().hex
        params = {"block_resources": "websocket"} if blocked else {}
        response = await service.shot(f"/bm/{token}/socket", wait_until="networkidle0", **params)
        body = await response.json()
        assert response.status == 200, body
        async with service.client.session.get(body["url"]) as stored:
            image = image_of(await stored.read()).convert("RGB")
        assert (image.getpixel((50, 50)) == WHITE) == blocked  # the page saw its socket open, or fail
        assert service.site.log.count(f"/bm/{token}/ws") == (0 if blocked else 1)
        assert body["blocked_requests"] == (1 if blocked else 0)


async def test_a_pattern_blocks_an_iframes_document(service: Service) -> None:
    token = uuid.uuid4().hex
    body = await (await service.shot(f"/bm/{token}/frame", block_requests="*/red.png",
                                     wait_until="networkidle0")).json()
    assert service.site.log.count(f"/bm/{token}/red.png") == 0 and body["blocked_requests"] == 1


async def test_the_page_itself_is_followed_through_a_redirect_to_a_matching_url(service: Service) -> None:
    token = uuid.uuid4().hex
    response = await service.shot(f"/redirect?to=%2Fbm%2F{token}%2Fpage", block_requests="*/bm/*/page")
    body = await response.json()
    assert response.status == 200, body
    assert service.site.log.count(f"/bm/{token}/page") == 1 and body["page"]["final_url"].endswith("/page")


async def test_types_the_page_does_not_use_block_nothing_of_it(service: Service) -> None:
    body, image, seen = await _capture(service, block_resources="media,other")
    assert seen == set(PARTS) and body["blocked_requests"] == 0 and image.getpixel(IMAGE_AT) == IMAGE_RGB
