"""Upstream proxies (SPEC §3.4) through the whole service, with real forward proxies on loopback.

The target is ``site.test``: the service's resolver and the upstream's own table both map it to
the test site, so a request reaching the site through the upstream proves the upstream got the
*name*.  The module's pool has an egress policy that lets the test site and these proxies through.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from screenshot_service import config, config_loading
from screenshot_service.bench.forward_proxy import ForwardProxy
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture.options import CaptureOptions
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from screenshot_service.egress.upstream import parse_upstream
from screenshot_service.wiring import start_browser, stop_browser
from tests.conftest import Service, wait_for
from tests.jobs_helpers import plan, settings_for, start_app, webhook_receiver
from tests.redis_server import free_port

if TYPE_CHECKING:
    from tests.conftest import TestSite

USER, PASSWORD = "us er@x", "p:ss/w0rd-Secret"
WRONG = "wrong-Secret-pw"
NAMES = {"site.test": "127.0.0.1", "internal.test": "10.9.9.9", "proxy.test": "127.0.0.1"}
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass
class Upstreams:
    open: ForwardProxy
    second: ForwardProxy  # second and third: the "eu" pool's
    third: ForwardProxy
    authed: ForwardProxy
    refusing: ForwardProxy
    dead_port: int  # nothing listens there
    pool: BrowserPool
    resolver: StaticResolver
    allow: list[str]

    def all(self) -> tuple[ForwardProxy, ...]:
        return self.open, self.second, self.third, self.authed, self.refusing

    def authed_url(self, password: str = PASSWORD) -> str:
        return self.authed.url(quote(USER, safe=""), quote(password, safe=""))


@pytest.fixture(scope="module")
async def upstreams(test_site: TestSite) -> AsyncIterator[Upstreams]:
    names = {"site.test": "127.0.0.1"}
    proxies = [await ForwardProxy(names=names).start(), await ForwardProxy(names=names).start(),
               await ForwardProxy(names=names).start(),
               await ForwardProxy(names=names, credentials=(USER, PASSWORD)).start(),
               await ForwardProxy(names=names, refuse_connect=403).start()]
    dead = free_port()
    allow = [f"127.0.0.1:{port}" for port in (test_site.port, dead, *(p.port for p in proxies))]
    resolver = StaticResolver(NAMES, SystemResolver())
    pool, egress = await start_browser(config.BrowserConfig(pool_size=2, max_queue=8),
                                       EgressPolicy.from_config(config.EgressConfig(allow=allow)), resolver,
                                       job_slots=1)
    yield Upstreams(*proxies, dead, pool, resolver, allow)
    await stop_browser(pool, egress)
    for proxy in proxies:
        await proxy.stop()


@pytest.fixture(autouse=True)
def _fresh_records(request: pytest.FixtureRequest) -> None:
    # Only where a test uses the proxies: a plain test asking for the async module fixture
    # after another module's tests finds the session's test site already gone.
    if "upstreams" not in request.fixturenames:
        return
    upstreams: Upstreams = request.getfixturevalue("upstreams")
    for proxy in upstreams.all():
        proxy.received.__init__()  # type: ignore[misc]


UNLIMITED = {"requests_per_second": 100000, "burst": 100000, "monthly_captures": 10**9, "concurrency": 1000}


async def proxied(make_service: Any, upstreams: Upstreams, **sections: Any) -> Service:
    return await make_service(
        pool=upstreams.pool, resolver=upstreams.resolver, egress={"allow": upstreams.allow},
        proxies={"eu": {"urls": [upstreams.second.url(), upstreams.third.url()]}},
        plans={"unlimited": {**UNLIMITED, "proxy_pools": ["*"]}}, **sections)


def site(test_site: TestSite, path: str, scheme: str = "http") -> str:
    return f"{scheme}://site.test:{test_site.port}{path}"


async def post(service: Service, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await service.client.post("/v1/screenshot", json=body, headers=service.auth())
    return response.status, await response.json()


async def used(service: Service) -> int:
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    return int(usage["quota"]["used"])


async def test_every_request_goes_through_the_proxy_by_name_with_its_credentials(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    service = await proxied(make_service, upstreams)
    frame = site(test_site, f"/reach?kind=iframe&target=http://site.test:{test_site.port}")
    status, body = await post(service, url=frame, proxy=upstreams.authed_url())
    assert status == 200, body
    lines = upstreams.authed.received.request_lines
    assert f"GET {frame} HTTP/1.1" in lines  # the main document, in absolute form
    assert f"GET http://site.test:{test_site.port}/frame HTTP/1.1" in lines  # and its iframe
    status, body = await post(service, url=site(test_site, f"/reach?kind=websocket&target=http://site.test:{test_site.port}"),
                              proxy=upstreams.authed_url())
    assert status == 200, body
    assert await wait_for(lambda: f"site.test:{test_site.port}" in upstreams.authed.received.connect_targets)
    received = upstreams.authed.received
    assert set(received.hosts) == {"site.test"}  # the name, resolved by the upstream
    assert set(received.authorizations) == {BASIC}


async def test_https_targets_go_through_connect(make_service: Any, upstreams: Upstreams, test_site: TestSite) -> None:
    service = await proxied(make_service, upstreams)
    # The test site speaks no TLS: the tunnel is made, the handshake inside it fails.
    status, body = await post(service, url=site(test_site, "/paint", "https"), proxy=upstreams.authed_url())
    assert (status, body["error"]["code"]) == (502, "target_unreachable"), body
    assert set(upstreams.authed.received.connect_targets) == {f"site.test:{test_site.port}"}  # Chromium may retry
    assert set(upstreams.authed.received.authorizations) == {BASIC}


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_wrong_credentials_are_502_proxy_error_and_refunded(
    make_service: Any, upstreams: Upstreams, test_site: TestSite, scheme: str
) -> None:
    service = await proxied(make_service, upstreams)
    status, body = await post(service, url=site(test_site, "/paint", scheme), proxy=upstreams.authed_url(WRONG))
    assert status == 502, body
    error = body["error"]
    assert (error["code"], error["details"]) == ("proxy_error", {"status": 407})
    assert "authentication failed" in error["message"]
    assert WRONG not in str(body) and USER not in str(body)
    assert await used(service) == 0


async def test_a_refused_connect_is_502_with_the_upstreams_status(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    service = await proxied(make_service, upstreams)
    status, body = await post(service, url=site(test_site, "/paint", "https"), proxy=upstreams.refusing.url())
    assert status == 502, body
    assert (body["error"]["code"], body["error"]["details"]) == ("proxy_error", {"status": 403})
    assert "refused" in body["error"]["message"]


async def test_an_unreachable_proxy_is_502_proxy_error(make_service: Any, upstreams: Upstreams, test_site: TestSite) -> None:
    service = await proxied(make_service, upstreams)
    status, body = await post(service, url=site(test_site, "/paint"), proxy=f"http://127.0.0.1:{upstreams.dead_port}")
    assert (status, body["error"]["code"]) == (502, "proxy_error"), body
    assert "could not be reached" in body["error"]["message"]
    assert await used(service) == 0


@pytest.mark.parametrize("target", ["http://10.1.2.3/", "http://internal.test/", "http://127.0.0.1:9/"])
async def test_private_targets_are_refused_before_the_proxy_sees_them(
    make_service: Any, upstreams: Upstreams, target: str
) -> None:
    service = await proxied(make_service, upstreams)
    status, body = await post(service, url=target, proxy=upstreams.open.url())
    assert (status, body["error"]["code"]) == (400, "blocked_target"), body
    assert upstreams.open.received.request_lines == []


async def test_a_subresource_to_a_private_host_is_refused_and_never_sent_upstream(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    service = await proxied(make_service, upstreams)
    status, body = await post(service, url=site(test_site, "/reach?kind=iframe&target=http://internal.test"),
                              proxy=upstreams.open.url())
    assert status == 200, body
    assert body["blocked_requests"] >= 1
    assert set(upstreams.open.received.hosts) == {"site.test"}


async def test_a_loopback_proxy_needs_egress_allow(service: Service, upstreams: Upstreams) -> None:
    status, body = await post(service, url=service.site.url + "/paint", proxy=upstreams.open.url())
    assert (status, body["error"]["code"]) == (400, "blocked_target"), body
    assert body["error"]["details"]["field"] == "proxy"
    assert upstreams.open.received.request_lines == []


async def test_a_job_with_a_loopback_proxy_is_refused_at_submit(
    aiohttp_client: Any, tmp_path: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    app = await start_app(aiohttp_client, settings_for(tmp_path, test_site), test_site, upstreams.pool)
    response = await app.submit(proxy=upstreams.open.url())
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (400, "blocked_target"), body
    assert body["error"]["details"]["field"] == "proxy"
    assert await app.credits_used() == 0


async def test_the_proxys_address_is_checked_again_on_connecting(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    # The app's policy allows the proxy, the shared pool's egress proxy does not: refused at connect.
    service = await make_service(egress={"allow": [f"127.0.0.1:{test_site.port}", upstreams.open.address]})
    status, body = await post(service, url=test_site.url + "/paint", proxy=upstreams.open.url())
    assert (status, body["error"]["code"]) == (400, "blocked_target"), body
    assert upstreams.open.received.request_lines == []
    assert await used(service) == 0


async def test_proxy_is_post_only_and_never_beside_proxy_pool(make_service: Any, upstreams: Upstreams) -> None:
    service = await proxied(make_service, upstreams)
    secret_url = upstreams.authed_url()
    answer = await service.shot("/paint", proxy=secret_url)
    body = await answer.json()
    assert answer.status == 400 and "POST" in body["error"]["details"]["fields"]["proxy"]
    status, body = await post(service, url=service.site.url + "/paint", proxy=secret_url, proxy_pool="eu")
    assert status == 400 and set(body["error"]["details"]["fields"]) == {"proxy", "proxy_pool"}
    for bad in ("https://u:p-Secret@127.0.0.1:3128", "http://u:p-Secret@127.0.0.1:3128/path",
                "http://u:p-Secret@127.0.0.1", "socks5://u:p-Secret@127.0.0.1:1080"):
        status, body = await post(service, url=service.site.url + "/paint", proxy=bad)
        assert status == 400 and "proxy" in body["error"]["details"]["fields"], body
        assert "p-Secret" not in str(body)
    assert "http only" in body["error"]["details"]["fields"]["proxy"]


async def test_a_pool_is_used_in_turn(make_service: Any, upstreams: Upstreams, test_site: TestSite) -> None:
    service = await proxied(make_service, upstreams)
    for _ in range(3):
        status, body = await post(service, url=site(test_site, "/paint"), proxy_pool="eu")
        assert status == 200, body
    main = f"GET {site(test_site, '/paint')} HTTP/1.1"
    assert (upstreams.second.received.request_lines.count(main), upstreams.third.received.request_lines.count(main)) == (2, 1)


async def test_plans_say_which_pools_their_keys_may_use(make_service: Any, upstreams: Upstreams) -> None:
    free = await proxied(make_service, upstreams, plan="free")
    answer = await free.shot("/paint", proxy_pool="eu")
    body = await answer.json()
    assert answer.status == 400 and "plan 'free'" in body["error"]["details"]["fields"]["proxy_pool"]
    service = await proxied(make_service, upstreams)
    answer = await service.shot("/paint", proxy_pool="asia")
    body = await answer.json()
    assert answer.status == 400 and "no proxy pool 'asia'" in body["error"]["details"]["fields"]["proxy_pool"]


async def test_a_plan_may_refuse_proxies_of_ones_own(make_service: Any, upstreams: Upstreams) -> None:
    service = await make_service(plans={"unlimited": {**UNLIMITED, "custom_proxy": False}})
    status, body = await post(service, url=service.site.url + "/paint", proxy=upstreams.open.url())
    assert status == 400 and "plan 'unlimited'" in body["error"]["details"]["fields"]["proxy"], body
    assert upstreams.open.received.request_lines == []


async def test_a_callers_proxy_may_not_be_one_of_the_pools(make_service: Any, upstreams: Upstreams, test_site: TestSite) -> None:
    # egress.allow lets the pool's proxies through for the pool's sake, not for every key's own use.
    service = await proxied(make_service, upstreams)
    for own in (upstreams.second.url(), f"http://site.test:{upstreams.third.port}"):  # its address, or a name for it
        status, body = await post(service, url=site(test_site, "/paint"), proxy=own)
        assert (status, body["error"]["code"], body["error"]["details"]["field"]) == (400, "blocked_target", "proxy"), body
        assert "proxy_pool" in body["error"]["message"]
    assert upstreams.second.received.request_lines == upstreams.third.received.request_lines == []
    assert await used(service) == 0


async def test_a_callers_proxy_is_checked_against_the_pools_again_on_connecting(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    # The service's check finds proxy.test elsewhere; when the egress proxy connects, the name is a pool member's.
    service = await make_service(
        pool=upstreams.pool, resolver=StaticResolver({**NAMES, "proxy.test": "127.0.0.2"}),
        egress={"allow": [*upstreams.allow, f"127.0.0.2:{upstreams.second.port}"]},
        proxies={"eu": {"urls": [upstreams.second.url()]}}, plans={"unlimited": UNLIMITED})
    status, body = await post(service, url=site(test_site, "/paint"), proxy=f"http://proxy.test:{upstreams.second.port}")
    assert (status, body["error"]["code"], body["error"]["details"]) == (400, "blocked_target", {"field": "proxy"}), body
    assert upstreams.second.received.request_lines == []
    assert await used(service) == 0


@pytest.mark.parametrize("problem", ["blocked", "unresolvable", "blocked on connecting"])
async def test_a_pools_problem_is_502_naming_the_pool_never_its_proxies(
    make_service: Any, upstreams: Upstreams, test_site: TestSite, caplog: pytest.LogCaptureFixture, problem: str
) -> None:
    caplog.set_level(logging.INFO)
    unlisted = free_port()  # allowed by the service's policy, not by the egress proxy's: refused on connecting
    proxy, hidden = {"blocked": ("internal.test:3128", ["internal.test", "10.9.9.9"]),
                     "unresolvable": ("nx.invalid:3128", ["nx.invalid"]),
                     "blocked on connecting": (f"127.0.0.1:{unlisted}", [f"127.0.0.1:{unlisted}"])}[problem]
    service = await make_service(
        pool=upstreams.pool, resolver=StaticResolver(NAMES), egress={"allow": [*upstreams.allow, f"127.0.0.1:{unlisted}"]},
        proxies={"corp": {"urls": [f"http://{proxy}"]}}, plans={"unlimited": {**UNLIMITED, "proxy_pools": ["*"]}})
    status, body = await post(service, url=site(test_site, "/paint"), proxy_pool="corp")
    assert (status, body["error"]["code"], body["error"]["details"]) == (502, "proxy_error", {"proxy_pool": "corp"}), body
    assert all(h not in str(body) for h in hidden), body
    assert any(proxy in r.getMessage() for r in caplog.records)  # the operator's log says which proxy
    assert await used(service) == 0


def test_pool_names_in_config_are_those_proxy_pool_accepts() -> None:
    with pytest.raises(config.ConfigError, match=r"proxies\.zürich"):
        config_loading.from_dict({"proxies": {"zürich": {"urls": ["http://proxy.example:3128"]}}})


SQUID = {"urls": ["http://a:pw-Secret@10.20.30.40:3128"]}


def test_a_pool_proxy_on_a_refused_address_stops_the_start() -> None:
    with pytest.raises(config.ConfigError, match=r"proxies\.corp\.urls.*egress\.allow") as refused:
        config_loading.from_dict({"proxies": {"corp": SQUID}})
    assert "pw-Secret" not in str(refused.value)
    config_loading.from_dict({"proxies": {"corp": SQUID}, "egress": {"allow": ["10.20.30.40:3128"]}})


def test_settings_never_show_pool_passwords() -> None:
    settings = config_loading.from_dict({"proxies": {"corp": SQUID}, "egress": {"allow": ["10.20.30.40:3128"]}})
    assert "pw-Secret" not in repr(settings)
    assert config_loading.replace(settings).proxies["corp"].urls == SQUID["urls"]


def test_the_cache_tells_proxies_apart_without_holding_their_credentials() -> None:
    def fingerprint(**proxy: str) -> str:
        return CaptureOptions.from_json({"url": "https://example.com/", **proxy}).cache_fingerprint()

    prints = {fingerprint(), fingerprint(proxy="http://a:one@de.example:3128"),
              fingerprint(proxy="http://a:two@de.example:3128"), fingerprint(proxy="http://a:one@fr.example:3128"),
              fingerprint(proxy_pool="eu"), fingerprint(proxy_pool="us")}
    assert len(prints) == 6
    assert fingerprint(proxy="http://a:one@de.example:3128") == fingerprint(proxy="http://a:one@de.example:3128/")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_failing_proxies_leave_no_descriptor_behind(
    make_service: Any, upstreams: Upstreams, test_site: TestSite
) -> None:
    service = await proxied(make_service, upstreams)
    failing = [(site(test_site, "/paint", "https"), upstreams.refusing.url()),
               (site(test_site, "/paint"), upstreams.authed_url(WRONG)),
               (site(test_site, "/paint"), f"http://127.0.0.1:{upstreams.dead_port}")]
    pool = upstreams.pool

    def settled() -> bool:  # every context back and warm again, each with its proxy channel
        stats = pool.stats()
        return pool.ready and stats["warm"] == stats["size"] and stats["in_use"] == 0 and stats["warming"] == 0

    for url, proxy in failing:  # once to warm every path up
        assert (await post(service, url=url, proxy=proxy))[0] == 502
    assert await wait_for(settled), pool.stats()
    baseline = fd_count()
    for _ in range(2):
        for url, proxy in failing:
            assert (await post(service, url=url, proxy=proxy))[0] == 502
    assert await wait_for(settled), pool.stats()
    # At most the baseline: a connection Chromium held at the baseline may have closed since; a leak only adds.
    assert await wait_for(lambda: fd_count() <= baseline), (fd_count(), baseline)


async def test_credentials_stay_out_of_logs_jobs_and_webhooks(
    aiohttp_client: Any, tmp_path: Any, upstreams: Upstreams, test_site: TestSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with webhook_receiver() as hook:
        settings = settings_for(tmp_path, test_site, egress={"allow": [*upstreams.allow, f"127.0.0.1:{hook.port}"]},
                                plans={"jobs": plan(proxy_pools=["*"])})
        app = await start_app(aiohttp_client, settings, test_site, upstreams.pool, resolver=upstreams.resolver)
        seen: list[str] = []
        for password, outcome in ((PASSWORD, "succeeded"), (WRONG, "failed")):
            job = await app.submit_ok(webhook_url=hook.url, proxy=upstreams.authed_url(password))
            seen.append(str(job))
            seen.append(str(await app.job(job["id"])))
            done = await app.wait_done(job["id"])
            assert done["status"] == outcome, done
            seen.append(str(done))
        assert done["error"]["code"] == "proxy_error"
        assert await wait_for(lambda: len(hook.received) == 2)
        assert await app.credits_used() == 1  # the failed one refunded
    seen += [r.body.decode() for r in hook.received]
    seen += [r.getMessage() for r in caplog.records]
    text = "\n".join(seen)
    for secret in (PASSWORD, WRONG, quote(PASSWORD, safe=""), quote(WRONG, safe=""), USER, quote(USER, safe=""),
                   BASIC.split()[1]):
        assert secret not in text
    assert upstreams.authed.address in text  # host:port is all the log says of a proxy


def test_config_refuses_a_bad_pool_url_without_echoing_it() -> None:
    with pytest.raises(config.ConfigError) as refused:
        config_loading.from_dict({"proxies": {"eu": {"urls": ["http://a:pw-Secret@proxy.example:3128",
                                                              "https://b:pw-Secret@proxy.example:3128"]}}})
    assert "proxies.eu.urls" in str(refused.value) and "pw-Secret" not in str(refused.value)
    with pytest.raises(config.ConfigError) as refused:
        config_loading.from_dict({"proxies": {"eu": {"urls": "http://a:pw-Secret@proxy.example:3128"}}})
    assert "proxies.eu.urls" in str(refused.value) and "pw-Secret" not in str(refused.value)
    with pytest.raises(config.ConfigError, match=r"plans\.pro\.proxy_pools names 'asia'"):
        config_loading.from_dict({"plans": {"pro": {"proxy_pools": ["asia"]}}})


def test_pools_and_plan_pools_come_from_the_environment_too() -> None:
    settings = config_loading.load(None, {"SCREENSHOT_PROXIES_EU_URLS": '["http://a:b@proxy.example:3128"]',
                                          "SCREENSHOT_PLANS_FREE_PROXY_POOLS": '["eu"]'})
    assert settings.proxies["eu"].urls == ["http://a:b@proxy.example:3128"]
    assert settings.plans["free"].proxy_pools == ["eu"]


def test_proxy_urls_decode_their_credentials_and_never_show_them() -> None:
    token = parse_upstream("http://tok%40en@proxy.example:8080")  # a token alone as the user name
    assert (token.address, token.authorization) == ("proxy.example:8080", "Basic " + base64.b64encode(b"tok@en:").decode())
    v6 = parse_upstream("http://a:b%2Fc@[::1]:3128/")
    assert (v6.address, v6.password) == ("[::1]:3128", "b/c")
    assert "b/c" not in repr(v6) and "b%2Fc" not in repr(v6)
