"""Egress hardening through the whole service: a canary on loopback must see nothing.

The canary is a real aiohttp server on a 127.0.0.1 port that egress.allow does
NOT list.  Each test tries one way to reach it — a spelling of its address as
the target, a redirect, or something an allowed page loads — and then checks
the canary's log is empty.  One test per rule, hardening-suite style.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from tests.conftest import Service
from tests.site import REACH


@dataclass
class Canary:
    port: int
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
async def canary() -> AsyncIterator[Canary]:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(f"{request.method} {request.path}")
        return web.Response(text="canary")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    canary = Canary(port=port, hits=hits)
    yield canary
    await runner.cleanup()


@pytest.fixture(autouse=True)
def _fresh_canary_log(canary: Canary) -> None:
    canary.hits.clear()


BARRIER = "GET /barrier"


async def seen_until_now(canary: Canary) -> list[str]:
    """What reached the canary before this call, without a grace period to guess.

    A request of our own, sent now, is a barrier: the canary serves one listening socket in
    order, so anything Chromium sent it earlier is recorded before our request is answered.
    """
    async with aiohttp.ClientSession() as http, http.get(canary.url + "/barrier") as answer:
        assert answer.status == 200
    assert BARRIER in canary.hits
    return [hit for hit in canary.hits if hit != BARRIER]


def spellings(port: int) -> list[str]:
    """At least 30 ways to write 'loopback (or this host), port P' in a URL."""
    hosts = [
        "127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0x7f.1",
        "0177.0.0.1", "0177.1", "017700000001", "127.000.000.001", "127.0.0.1.", "0", "0.0.0.0",
        "0x0", "127.255.255.254", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::127.0.0.1]", "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]", "[::]", "localhost", "localhost.", "LOCALHOST", "foo.localhost",
        "%31%32%37.0.0.1", "127。0。0。1", "①②⑦.0.0.1",
    ]
    return [f"http://{host}:{port}/spelled" for host in hosts]


async def test_every_spelling_of_loopback_is_refused(service: Service, canary: Canary) -> None:
    urls = spellings(canary.port)
    assert len(urls) >= 30
    for url in urls:
        response = await service.client.get("/v1/screenshot", params={"url": url}, headers=service.auth())
        body = await response.json()
        assert response.status == 400, (url, body)
        assert body["error"]["code"] in ("blocked_target", "invalid_url"), (url, body)
    assert canary.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user@127.0.0.1:{port}/", "http://google.com@127.0.0.1:{port}/",
        "http://127.0.0.1:{port}\\@example.com/", "http://127.0.0.1%2f@example.com:{port}/",
        "http://127.0.0.1 :{port}/", "http://127.0.0.1\t:{port}/",
    ],
)
async def test_userinfo_and_authority_tricks_are_invalid(service: Service, canary: Canary, url: str) -> None:
    response = await service.client.get(
        "/v1/screenshot", params={"url": url.format(port=canary.port)}, headers=service.auth()
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] in ("invalid_url", "blocked_target")
    assert canary.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd", "chrome://settings", "view-source:http://example.com/",
        "data:text/html,<h1>x</h1>", "javascript:alert(1)", "ftp://example.com/", "gopher://example.com/",
        "ws://example.com/", "wss://example.com/", "about:blank", "blob:http://example.com/x",
        "HTTP://", "",
    ],
)
async def test_non_http_schemes_are_invalid(service: Service, url: str) -> None:
    response = await service.client.get("/v1/screenshot", params={"url": url}, headers=service.auth())
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] in ("invalid_url", "invalid_parameter")


async def test_http_redirect_to_the_canary_is_blocked(service: Service, canary: Canary) -> None:
    response = await service.shot(f"/redirect?to={canary.url}/redirected")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "blocked_target"
    assert canary.hits == []


async def test_script_navigation_to_the_canary_is_blocked(service: Service, canary: Canary) -> None:
    response = await service.shot(f"/reach?kind=script_navigation&target={canary.url}", delay=500)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "blocked_target"
    assert canary.hits == []


async def test_blocked_main_document_refunds_the_credit(service: Service, canary: Canary) -> None:
    await service.shot(f"/redirect?to={canary.url}/redirected")
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    assert usage["quota"]["used"] == 0


# Kinds where the browser certainly sends the request (so the proxy must count a refusal).
CERTAIN = {"img", "iframe", "script", "stylesheet", "css_background", "fetch", "xhr", "websocket",
           "eventsource", "beacon", "form_post"}


@pytest.mark.parametrize("kind", sorted(set(REACH) - {"script_navigation"}))
async def test_subresources_never_reach_the_canary(service: Service, canary: Canary, kind: str) -> None:
    response = await service.shot(f"/reach?kind={kind}&target={canary.url}", delay=300)
    body: dict[str, Any] = await response.json()
    if kind == "form_post":
        # The form navigates the main frame to the canary: the capture itself is refused.
        assert response.status == 400 and body["error"]["code"] == "blocked_target"
    else:
        assert response.status == 200, body
        if kind in CERTAIN:
            assert body["blocked_requests"] >= 1
    assert await seen_until_now(canary) == []


async def test_hostname_resolving_to_loopback_is_blocked(make_service: Any, canary: Canary) -> None:
    resolver = StaticResolver({"rebind.test": ["127.0.0.1"]}, fallback=SystemResolver())
    service: Service = await make_service(resolver=resolver)
    response = await service.client.get(
        "/v1/screenshot", params={"url": f"http://rebind.test:{canary.port}/"}, headers=service.auth()
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "blocked_target" and "127.0.0.1" in error["message"]
    assert canary.hits == []


async def test_allow_entry_opens_exactly_its_port(make_service: Any, canary: Canary) -> None:
    service: Service = await make_service()  # allows only the test site's port
    allowed = await service.shot("/paint")
    assert allowed.status == 200
    refused = await service.client.get("/v1/screenshot", params={"url": canary.url + "/"}, headers=service.auth())
    assert refused.status == 400
    assert canary.hits == []


async def test_unresolvable_host_is_502(service: Service) -> None:
    response = await service.client.get(
        "/v1/screenshot", params={"url": "http://does-not-exist.invalid/"}, headers=service.auth()
    )
    assert response.status == 502
    assert (await response.json())["error"]["code"] == "target_unreachable"
