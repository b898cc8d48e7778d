"""Headers scoped like cookies (Step 13, finding 3; Step 15, finding 7): caller ``headers`` reach
the target's origin only, and only on the requests the target's own frames make.

The site (headers_site.py) records every request's host, port, path and headers:
what each origin received is what the browser sent it.  ``/page`` loads
same-origin and third-party resources; ``/frames`` embeds hostile frames of
another origin that ask the target's origin for things, and sandboxed frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from screenshot_service import config
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from screenshot_service.egress.urls import origin_of
from screenshot_service.wiring import start_browser, stop_browser
from tests.conftest import Service
from tests.headers_site import THIRD, HeadersSite, Seen, running_site

SECRET = {"Authorization": "Bearer for-the-target-only", "X-Tenant": "t-42"}


@pytest.fixture(scope="module")
async def headers_site() -> AsyncIterator[HeadersSite]:
    async with running_site() as site:
        yield site


@pytest.fixture(scope="module")
async def headers_pool(headers_site: HeadersSite) -> AsyncIterator[BrowserPool]:
    allow = [f"127.0.0.1:{headers_site.port}", f"127.0.0.1:{headers_site.other_port}"]
    policy = EgressPolicy.from_config(config.EgressConfig(allow=allow))
    resolver = StaticResolver({THIRD: "127.0.0.1"}, fallback=SystemResolver())
    pool, proxy = await start_browser(config.BrowserConfig(pool_size=2, max_queue=8), policy, resolver)
    yield pool
    await stop_browser(pool, proxy)


@pytest.fixture
async def svc(make_service: Any, headers_pool: BrowserPool, headers_site: HeadersSite) -> Service:
    headers_site.seen.clear()
    allow = [f"127.0.0.1:{headers_site.port}", f"127.0.0.1:{headers_site.other_port}"]
    service: Service = await make_service(pool=headers_pool, egress={"allow": allow})
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


# The target's own requests on /frames: the main document's and its worker's, those of frames of
# its origin (sandboxed but allowed the same origin too), and of a blank and a srcdoc child, which
# inherit the page's origin.
OWN = ("/frames", "/own.png", "/own-fetch", "/own-xhr", "/child-fetch/same", "/child-fetch/sandboxed-same",
       "/blank-fetch", "/srcdoc-fetch", "/worker.js", "/worker-fetch")
# Requests of frames whose origin is opaque: sandboxed ones (whatever their URL) and a data: one.
OPAQUE = ("/child-fetch/sandboxed", "/sandboxed-srcdoc-fetch", "/sandboxed-img", "/data-fetch")
# What each hostile frame (``near``: same site, another port; ``far``: another site) asked the target for.
STOLEN = {f"/stolen/{kind}-{name}" for kind in ("fetch", "cors", "img", "blank", "worker", "child", "renavigate")
          for name in ("near", "far")}
STOLEN |= {"/stolen/form-near", "/stolen/link-far"}


def _one(headers_site: HeadersSite, path: str) -> Seen:
    (seen,) = [s for s in headers_site.at_target(path) if s.path == path]
    return seen


async def test_frames_of_other_origins_never_get_the_headers(svc: Service, headers_site: HeadersSite) -> None:
    # Finding 7 of Step 15: a cross-origin iframe fetched the target's origin and got the Authorization.
    await _capture(svc, headers_site.url + "/frames")
    stolen = headers_site.at_target("/stolen/")
    assert {s.path for s in stolen} == STOLEN  # each hostile request reached the target
    assert [s.path for s in stolen if not _has_none(s)] == []
    assert [path for path in OPAQUE if not _has_none(_one(headers_site, path))] == []
    assert [path for path in OWN if not _has_secret(_one(headers_site, path))] == []


async def test_headers_scope_all_gives_them_to_every_frame(svc: Service, headers_site: HeadersSite) -> None:
    await _capture(svc, headers_site.url + "/frames", headers_scope="all")
    # Workers are left out: Network.setExtraHTTPHeaders does not reach them; CORS preflights carry none.
    seen = [s for s in headers_site.at_target() if s.method == "GET" and "worker" not in s.path]
    assert {s.path for s in seen} >= {p for p in STOLEN | set(OWN) | set(OPAQUE) if "worker" not in p}
    assert [s.path for s in seen if not _has_secret(s)] == []


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
