"""Honest failures (Step 13, finding 5/6): the egress proxy's error page is never the capture.

A main document the proxy could not fetch (nothing listening on an allowed port,
an address that does not answer, an upstream that broke off) is 502
``target_unreachable``; one the egress policy refused is 400 ``blocked_target``,
however the page got there (the URL, a redirect, ``html`` or ``js`` navigating
the main frame).  Neither is charged, and the next capture succeeds.

The pool here lets through the test site and one allowed port with nothing
listening: a socket bound but never listening, so connecting is refused and no
other process can take the port meanwhile.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from screenshot_service import config
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import SystemResolver
from screenshot_service.wiring import start_browser, stop_browser
from tests import conftest
from tests.conftest import Service

# Loopback on a port egress.allow does not list (the proxy refuses it), and on port 1, which
# Chromium itself never connects to (ERR_UNSAFE_PORT): both are blocked targets.
UNSAFE = "http://127.0.0.1:1/"


def _bound_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """Allowed, nothing listening."""
    yield from _bound_port()


@pytest.fixture(scope="module")
def blocked() -> Iterator[str]:
    """Not allowed (nothing listens there either: the proxy refuses before connecting)."""
    for port in _bound_port():
        yield f"http://127.0.0.1:{port}/"


def _allow(site: conftest.TestSite, closed_port: int) -> list[str]:
    return [f"127.0.0.1:{site.port}", f"127.0.0.1:{closed_port}"]


@pytest.fixture(scope="module")
async def failures_pool(test_site: conftest.TestSite, closed_port: int) -> AsyncIterator[BrowserPool]:
    policy = EgressPolicy.from_config(config.EgressConfig(allow=_allow(test_site, closed_port)))
    pool, proxy = await start_browser(config.BrowserConfig(pool_size=2, max_queue=8), policy, SystemResolver())
    yield pool
    await stop_browser(pool, proxy)


@pytest.fixture
async def svc(make_service: Any, failures_pool: BrowserPool, test_site: conftest.TestSite, closed_port: int) -> Service:
    service: Service = await make_service(pool=failures_pool,
                                          egress={"allow": _allow(test_site, closed_port)})
    return service


async def _capture(svc: Service, **params: Any) -> tuple[int, dict[str, Any]]:
    response = await svc.client.get("/v1/screenshot", params={"api_key": svc.key, **params})
    return response.status, await response.json()


async def _used(svc: Service) -> int:
    usage = await (await svc.client.get("/v1/usage", headers=svc.auth())).json()
    return int(usage["quota"]["used"])


async def _fails(svc: Service, status: int, code: str, **params: Any) -> dict[str, Any]:
    """The capture fails as ``status``/``code``, is not charged, and a normal capture still succeeds."""
    before = await _used(svc)
    got, body = await _capture(svc, **params)
    assert (got, body.get("error", {}).get("code")) == (status, code), body
    assert await _used(svc) == before  # refunded
    ok, result = await _capture(svc, url=svc.site.url + "/paint")
    assert ok == 200, result
    assert await _used(svc) == before + 1
    return dict(body["error"])


async def test_an_allowed_port_with_nothing_listening_is_502(svc: Service, closed_port: int) -> None:
    error = await _fails(svc, 502, "target_unreachable", url=f"http://127.0.0.1:{closed_port}/")
    assert error["details"]["host"] == "127.0.0.1"


async def test_a_redirect_to_an_unreachable_host_is_502(svc: Service, closed_port: int) -> None:
    await _fails(svc, 502, "target_unreachable", url=f"{svc.site.url}/redirect?to=http://127.0.0.1:{closed_port}/x")


async def test_https_to_an_allowed_port_with_nothing_listening_is_502(svc: Service, closed_port: int) -> None:
    # The proxy's answer to a CONNECT never reaches the page: the tunnel just fails.
    await _fails(svc, 502, "target_unreachable", url=f"https://127.0.0.1:{closed_port}/")


async def test_nat64_spelling_of_a_down_allowed_host_is_502(svc: Service, closed_port: int) -> None:
    await _fails(svc, 502, "target_unreachable", url=f"http://[64:ff9b::7f00:1]:{closed_port}/")


async def test_nat64_spelling_of_a_blocked_address_is_400(svc: Service, blocked: str) -> None:
    nat64 = blocked.replace("127.0.0.1", "[64:ff9b::7f00:1]")
    await _fails(svc, 400, "blocked_target", url=nat64)
    # ... also when a redirect takes the page there (the proxy refuses it, not the up-front check).
    await _fails(svc, 400, "blocked_target", url=f"{svc.site.url}/redirect?to={nat64}")


async def test_a_redirect_to_a_blocked_https_address_is_400(svc: Service, blocked: str) -> None:
    await _fails(svc, 400, "blocked_target", url=f"{svc.site.url}/redirect?to={blocked.replace('http:', 'https:')}")


@pytest.mark.parametrize("where", ["policy", "unsafe_port"])
async def test_html_navigating_the_main_frame_to_a_blocked_address_is_400(
    svc: Service, blocked: str, where: str
) -> None:
    before = await _used(svc)
    html = f"<p>leaving</p><script>location.href = '{blocked if where == 'policy' else UNSAFE}';</script>"
    response = await svc.client.post("/v1/screenshot", json={"api_key": svc.key, "html": html})
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (400, "blocked_target"), body
    assert body["error"]["details"]["host"] == "127.0.0.1"
    assert await _used(svc) == before
    ok, result = await _capture(svc, url=svc.site.url + "/paint")
    assert ok == 200, result


@pytest.mark.parametrize("where", ["policy", "unsafe_port"])
async def test_js_navigating_the_main_frame_to_a_blocked_address_is_400(
    svc: Service, blocked: str, where: str
) -> None:
    target = blocked if where == "policy" else UNSAFE
    await _fails(svc, 400, "blocked_target", url=svc.site.url + "/paint", js=f"location.href = '{target}'")


async def test_js_navigating_the_main_frame_to_an_unreachable_host_is_502(svc: Service, closed_port: int) -> None:
    await _fails(svc, 502, "target_unreachable", url=svc.site.url + "/paint",
                 js=f"location.href = 'http://127.0.0.1:{closed_port}/'")
