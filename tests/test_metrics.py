"""/metrics, request ids and the JSON access log, driven over real HTTP with a real capture."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from screenshot_service.api.metrics import install_metrics
from screenshot_service.api.tester import install_tester
from screenshot_service.app import create_app
from screenshot_service.appkeys import METRICS
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.limits.keys import create_key
from screenshot_service.metrics import Metrics, metrics_middleware
from screenshot_service.observability import JsonAccessLogger
from screenshot_service.state.sqlite import SqliteStateStore
from tests.conftest import Service, base_settings
from tests.conftest import TestSite as Site

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def start_service(
    aiohttp_client: Any,
    root: Path,
    site: Site,
    pool: BrowserPool,
    *,
    plan: str = "unlimited",
    port: int | None = None,
    runner_kwargs: dict[str, Any] | None = None,
    **sections: Any,
) -> Service:
    """Like conftest's make_service, with metrics and the tester page installed.

    ``install_*`` are idempotent, so this keeps working once create_app calls them itself.
    ``runner_kwargs`` go to the AppRunner (e.g. the access logger ``serve`` uses).
    """
    settings = base_settings(root, site.port, **sections)
    state = SqliteStateStore(settings.state.sqlite.path)
    record, raw = await create_key(state, plan, "test")
    app = create_app(settings, pool=pool, state=state)
    install_metrics(app)
    install_tester(app)
    server = TestServer(app, port=port)
    await server.start_server(**(runner_kwargs or {}))
    client = await aiohttp_client(server)
    return Service(client=client, key=raw, key_id=record.id, settings=settings, state=state, site=site)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(svc: Service) -> Samples:
    response = await svc.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await response.text())


@pytest.fixture
async def metered(aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: BrowserPool) -> Service:
    return await start_service(aiohttp_client, tmp_path / "svc", test_site, shared_pool)


async def test_request_id_is_echoed_or_generated(metered: Service) -> None:
    given = await metered.client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.42"
    made = await metered.client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 24
    # Junk (spaces, header-splitting attempts, 200 chars) is replaced, not echoed.
    junk = await metered.client.get("/healthz", headers={"X-Request-ID": "a b" + "x" * 200})
    assert junk.headers["X-Request-ID"] != "a b" + "x" * 200 and len(junk.headers["X-Request-ID"]) == 24
    # Error responses carry it too: it is what a caller quotes to an operator.
    missing = await metered.client.get("/no-such-thing", headers={"X-Request-ID": "trace-1"})
    assert missing.status == 404 and missing.headers["X-Request-ID"] == "trace-1"


async def test_metrics_count_requests_phases_pool_and_rejections(
    metered: Service, tmp_path: Path, test_site: Site
) -> None:
    svc = metered
    ok = await svc.shot("/paint")
    assert ok.status == 200, await ok.text()
    unauthorized = await svc.client.get("/v1/screenshot", params={"url": test_site.url + "/paint"})
    assert unauthorized.status == 401
    # A free-plan key (1 request/s): a blocked target, then straight away a rate limit.
    _, free = await create_key(svc.state, "free", "metrics")
    blocked = await svc.client.get("/v1/screenshot", params={"url": "http://10.0.0.1/", "api_key": free})
    assert blocked.status == 400 and (await blocked.json())["error"]["code"] == "blocked_target"
    limited = await svc.client.get("/v1/screenshot", params={"url": test_site.url + "/paint", "api_key": free})
    assert limited.status == 429
    await svc.client.get("/v1/files/nothing-here.png")
    await svc.client.get("/probe/etc-passwd")

    samples = await scrape(svc)
    requests = "screenshot_http_requests_total"
    assert value(samples, requests, endpoint="/v1/screenshot", method="GET", status="200") == 1
    assert value(samples, requests, endpoint="/v1/screenshot", method="GET", status="401") == 1
    assert value(samples, requests, endpoint="/v1/screenshot", method="GET", status="400") == 1
    assert value(samples, requests, endpoint="/v1/screenshot", method="GET", status="429") == 1
    # Route patterns, never raw paths: a scanner cannot mint new series.
    assert value(samples, requests, endpoint="/v1/files/{name}", method="GET", status="404") == 1
    assert value(samples, requests, endpoint="unmatched", method="GET", status="404") == 1
    assert not any("passwd" in str(labels) or "nothing-here" in str(labels) for _, labels in samples)

    for phase in ("queue", "navigation", "capture", "storage", "total"):
        assert value(samples, "screenshot_capture_duration_seconds_count", phase=phase) == 1, phase
    assert value(samples, "screenshot_capture_duration_seconds_bucket", phase="navigation", le="30.0") == 1
    assert value(samples, "screenshot_capture_duration_seconds_bucket", phase="queue", le="+Inf") == 1

    assert value(samples, "screenshot_rejections_total", reason="rate_limited") == 1
    assert value(samples, "screenshot_rejections_total", reason="blocked_target") == 1
    assert value(samples, "screenshot_rejections_total", reason="missing_api_key") == 1
    assert value(samples, "screenshot_rejections_total", reason="quota_exceeded") == 0  # present before any event
    assert value(samples, "screenshot_api_errors_total", code="not_found") == 2

    assert value(samples, "screenshot_pool_size") == 2
    for gauge in ("in_use", "waiting", "warm", "browsers"):
        assert value(samples, f"screenshot_pool_{gauge}") is not None, gauge
    assert value(samples, "screenshot_pool_browsers") == 1
    assert value(samples, "screenshot_browser_restarts_total") is not None
    assert value(samples, "screenshot_browser_recycles_total") is not None
    assert value(samples, "screenshot_jobs_total", state="succeeded") is not None
    assert value(samples, "screenshot_storage_errors_total", target="service") == 0
    assert value(samples, "screenshot_egress_blocked_requests_total") == 0
    # Nothing secret or URL-shaped ends up in the exposition.
    text = await (await svc.client.get("/metrics")).text()
    assert svc.key not in text and free not in text and "/paint" not in text and "10.0.0.1" not in text


async def test_metrics_stays_open_while_draining(metered: Service) -> None:
    from screenshot_service.appkeys import LIFECYCLE

    metered.client.app[LIFECYCLE].draining = True
    try:
        assert (await metered.client.get("/v1/usage", headers=metered.auth())).status == 503
        samples = await scrape(metered)
        requests = "screenshot_http_requests_total"
        assert value(samples, requests, endpoint="/v1/usage", method="GET", status="503") == 1
        assert value(samples, "screenshot_rejections_total", reason="browser_unavailable") == 1
    finally:
        metered.client.app[LIFECYCLE].draining = False


def test_service_hooks_and_bounded_labels() -> None:
    metrics = Metrics(lambda: {"size": 4, "in_use": 3, "waiting": 2, "warm": 1, "browsers": 1,
                               "restarts": 5, "recycles": 6, "captures": 7})
    metrics.observe_phase("storage", 0.2)
    metrics.count_blocked(3)
    metrics.count_blocked(0)
    metrics.count_storage_error()
    metrics.count_storage_error(customer=True)
    metrics.job_state("succeeded")
    metrics.job_state("exploded")  # not a state we know: one "other" series, not a new one each time
    metrics.count_error("made_up_code")
    metrics.observe_request("/x", "BREW", 418, 0.01)
    with pytest.raises(ValueError, match="unknown capture phase"):
        metrics.observe_phase("dns", 1.0)
    samples = parse(metrics.render().decode())
    assert value(samples, "screenshot_capture_duration_seconds_count", phase="storage") == 1
    assert value(samples, "screenshot_egress_blocked_requests_total") == 3
    assert value(samples, "screenshot_storage_errors_total", target="service") == 1
    assert value(samples, "screenshot_storage_errors_total", target="customer") == 1
    assert value(samples, "screenshot_jobs_total", state="succeeded") == 1
    assert value(samples, "screenshot_jobs_total", state="other") == 1
    assert value(samples, "screenshot_api_errors_total", code="other") == 1
    assert value(samples, "screenshot_http_requests_total", endpoint="/x", method="other", status="418") == 1
    assert value(samples, "screenshot_pool_in_use") == 3 and value(samples, "screenshot_pool_waiting") == 2
    assert value(samples, "screenshot_browser_restarts_total") == 5
    assert value(samples, "screenshot_browser_recycles_total") == 6
    assert value(samples, "screenshot_pool_leases_total") == 7
    # Two apps in one process: separate registries, no "Duplicated timeseries" error.
    assert Metrics().registry is not metrics.registry


async def test_middleware_sits_outside_the_error_middleware(aiohttp_client: Any) -> None:
    from screenshot_service.api.error_middleware import error_middleware
    from screenshot_service.errors import RateLimited

    async def limited(request: web.Request) -> web.Response:
        raise RateLimited("slow down", retry_after=1)

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    metrics = Metrics()
    app = web.Application(middlewares=[metrics_middleware(metrics), error_middleware])
    app.router.add_get("/limited", limited)
    app.router.add_get("/crash", crash)
    client = await aiohttp_client(app)
    assert (await client.get("/limited")).status == 429
    assert (await client.get("/crash")).status == 500
    samples = parse(metrics.render().decode())
    assert value(samples, "screenshot_http_requests_total", endpoint="/limited", method="GET", status="429") == 1
    assert value(samples, "screenshot_http_requests_total", endpoint="/crash", method="GET", status="500") == 1
    assert value(samples, "screenshot_api_errors_total", code="internal_error") == 1


async def test_install_is_idempotent_and_placed_before_the_error_middleware(
    tmp_path: Path, test_site: Site, shared_pool: BrowserPool
) -> None:
    from screenshot_service.api.error_middleware import error_middleware

    app = create_app(base_settings(tmp_path, test_site.port), pool=shared_pool)
    first = install_metrics(app)
    assert install_metrics(app) is first and app[METRICS] is first
    chain = list(app.middlewares)
    ours = [m for m in chain if getattr(m, "__qualname__", "").startswith("metrics_middleware")]
    assert len(ours) == 1 and chain.index(ours[0]) == chain.index(error_middleware) - 1


async def test_access_log_is_one_redacted_json_line_per_request(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: BrowserPool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("screenshot_service.access.test")
    svc = await start_service(
        aiohttp_client, tmp_path / "svc", test_site, shared_pool,
        runner_kwargs={"access_log_class": JsonAccessLogger, "access_log": logger},
    )
    with caplog.at_level(logging.INFO, logger=logger.name):
        shot = await svc.client.get(
            "/v1/screenshot", params={"url": test_site.url + "/paint?secret=1", "api_key": svc.key},
            headers={"X-Request-ID": "req-123"},
        )
        assert shot.status == 200
        bad = await svc.client.get("/v1/screenshot", params={"url": test_site.url, "api_key": "sk_wrong"})
        assert bad.status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["request_id"] == "req-123" and first["status"] == 200 and first["path"] == "/v1/screenshot"
    assert first["key_id"] == svc.key_id and first["target_host"] == "127.0.0.1"
    assert first["bytes"] > 0 and first["duration_ms"] > 0
    assert second["status"] == 401 and second["request_id"] == bad.headers["X-Request-ID"]
    everything = "\n".join(lines)
    assert svc.key not in everything and "sk_wrong" not in everything
    assert "secret" not in everything and "/paint" not in everything and "api_key" not in everything
