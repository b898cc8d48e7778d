"""Headers scoped like cookies (Step 13, finding 3): caller ``headers`` reach the target's origin only.

A site of its own records every request's host, path and headers.  The page
under test, on ``127.0.0.1:PORT``, loads a same-origin image, iframe and fetch, and an
image, an iframe and a fetch from ``thirdparty.test:PORT`` — the same server,
but another origin (the pool's egress resolver maps the name to 127.0.0.1).
What each origin received is what the browser sent it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from screenshot_service import config
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture.scoped_headers import origin_of
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from screenshot_service.wiring import start_browser, stop_browser
from tests.conftest import Service
from tests.site import PIXEL_PNG

THIRD = "thirdparty.test"
SECRET = {"Authorization": "Bearer for-the-target-only", "X-Tenant": "t-42"}


@dataclass
class Seen:
    host: str  # without the port
    path: str
    headers: dict[str, str]


@dataclass
class HeadersSite:
    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def third(self) -> str:
        return f"http://{THIRD}:{self.port}"

    def at(self, host: str, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.host == host and (path is None or s.path == path)]


def _page(third: str) -> str:
    return (
        "<!doctype html><meta charset=utf-8><body>"
        "<img src='/same.png'><iframe src='/same-frame'></iframe>"
        f"<img src='{third}/img.png'>"
        f"<iframe src='{third}/frame'></iframe>"
        "<script>fetch('/same-fetch')"
        f".then(() => fetch('{third}/api', {{mode: 'no-cors'}}))"
        ".finally(() => document.body.insertAdjacentHTML('beforeend', '<b id=done>done</b>'));</script>"
    )


@pytest.fixture(scope="module")
async def headers_site() -> AsyncIterator[HeadersSite]:
    site = HeadersSite(port=0)

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        site.seen.append(Seen(request.host.split(":")[0], request.path, dict(request.headers)))
        return await handler(request)  # type: ignore[no-any-return]

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(site.third), content_type="text/html")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PIXEL_PNG, content_type="image/png")

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><p>frame or data</p>", content_type="text/html")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application(middlewares=[record])
    app.router.add_get("/page", page)
    app.router.add_get("/same.png", image)
    app.router.add_get("/img.png", image)
    app.router.add_get("/same-fetch", text)
    app.router.add_get("/api", text)
    app.router.add_get("/frame", text)
    app.router.add_get("/same-frame", text)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    site.port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield site
    await runner.cleanup()


@pytest.fixture(scope="module")
async def headers_pool(headers_site: HeadersSite) -> AsyncIterator[BrowserPool]:
    policy = EgressPolicy.from_config(config.EgressConfig(allow=[f"127.0.0.1:{headers_site.port}"]))
    resolver = StaticResolver({THIRD: "127.0.0.1"}, fallback=SystemResolver())
    pool, proxy = await start_browser(config.BrowserConfig(pool_size=2, max_queue=8), policy, resolver)
    yield pool
    await stop_browser(pool, proxy)


@pytest.fixture
async def svc(make_service: Any, headers_pool: BrowserPool, headers_site: HeadersSite) -> Service:
    headers_site.seen.clear()
    service: Service = await make_service(pool=headers_pool, egress={"allow": [f"127.0.0.1:{headers_site.port}"]})
    return service


async def _capture(svc: Service, url: str, **options: Any) -> dict[str, Any]:
    body = {"api_key": svc.key, "url": url, "headers": SECRET, "wait_for_selector": "#done", **options}
    response = await svc.client.post("/v1/screenshot", json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 200, result
    return result


def _has_secret(seen: Seen) -> bool:
    return all(seen.headers.get(name) == value for name, value in SECRET.items())


def _has_none(seen: Seen) -> bool:
    return not {name.lower() for name in SECRET} & {name.lower() for name in seen.headers}


async def test_headers_reach_the_target_origin_and_no_third_party(svc: Service, headers_site: HeadersSite) -> None:
    await _capture(svc, headers_site.url + "/page")
    for path in ("/page", "/same.png", "/same-frame", "/same-fetch"):  # the document, same-origin requests
        (seen,) = headers_site.at("127.0.0.1", path)
        assert _has_secret(seen), (path, seen.headers)
    (same_image,) = headers_site.at("127.0.0.1", "/same.png")
    assert "Referer" in same_image.headers and "User-Agent" in same_image.headers  # the browser's own kept
    third = headers_site.at(THIRD)
    assert {s.path for s in third} >= {"/img.png", "/frame", "/api"}  # the third party was really asked
    assert all(_has_none(s) for s in third), [(s.path, s.headers) for s in third]


async def test_headers_scope_all_sends_them_to_third_parties_too(svc: Service, headers_site: HeadersSite) -> None:
    await _capture(svc, headers_site.url + "/page", headers_scope="all")
    assert _has_secret(headers_site.at("127.0.0.1", "/page")[0])
    for path in ("/img.png", "/frame", "/api"):
        (seen,) = headers_site.at(THIRD, path)
        assert _has_secret(seen), (path, seen.headers)


async def test_a_same_origin_redirect_keeps_the_headers(svc: Service, headers_site: HeadersSite) -> None:
    await _capture(svc, headers_site.url + "/redirect?to=/page")
    assert _has_secret(headers_site.at("127.0.0.1", "/redirect")[0])
    assert _has_secret(headers_site.at("127.0.0.1", "/page")[0])
    assert _has_secret(headers_site.at("127.0.0.1", "/same.png")[0])


async def test_a_cross_origin_redirect_leaves_them_behind(svc: Service, headers_site: HeadersSite) -> None:
    # The target origin is the caller's URL's: the page a redirect lands on elsewhere gets nothing.
    result = await _capture(svc, f"{headers_site.url}/redirect?to={headers_site.third}/page")
    assert result["page"]["final_url"] == f"{headers_site.third}/page"
    assert _has_secret(headers_site.at("127.0.0.1", "/redirect")[0])
    third = headers_site.at(THIRD)
    assert {s.path for s in third} >= {"/page", "/same.png", "/img.png", "/frame", "/api"}
    assert all(_has_none(s) for s in third), [(s.path, s.headers) for s in third]


async def test_an_invalid_headers_scope_is_400_naming_it(svc: Service, headers_site: HeadersSite) -> None:
    for value in ("everyone", 1):
        response = await svc.client.post("/v1/screenshot", json={
            "api_key": svc.key, "url": headers_site.url + "/page", "headers": SECRET, "headers_scope": value})
        error = (await response.json())["error"]
        assert (response.status, error["code"]) == (400, "invalid_parameter")
        assert set(error["details"]["fields"]) == {"headers_scope"}, error
    response = await svc.client.get("/v1/screenshot", params={
        "api_key": svc.key, "url": headers_site.url + "/page", "headers_scope": "nope"})
    assert response.status == 400 and "headers_scope" in (await response.json())["error"]["details"]["fields"]
    assert headers_site.seen == []


async def test_headers_with_html_need_scope_all(svc: Service, headers_site: HeadersSite) -> None:
    html = f"<img src='{headers_site.url}/same.png'>"
    response = await svc.client.post("/v1/screenshot", json={"api_key": svc.key, "html": html, "headers": SECRET})
    error = (await response.json())["error"]
    assert response.status == 400 and set(error["details"]["fields"]) == {"headers", "html"}, error
    response = await svc.client.post("/v1/screenshot", json={
        "api_key": svc.key, "html": html, "headers": SECRET, "headers_scope": "all"})
    assert response.status == 200, await response.text()
    assert _has_secret(headers_site.at("127.0.0.1", "/same.png")[0])


@pytest.mark.parametrize(("url", "origin"), [
    ("http://Example.COM/a?b", "http://example.com"),
    ("http://example.com:80/", "http://example.com"),
    ("https://example.com:443/x", "https://example.com"),
    ("https://example.com:8443/x", "https://example.com:8443"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    ("ftp://example.com/", None),
    ("about:blank", None),
])
def test_origin_is_scheme_host_and_port(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin
