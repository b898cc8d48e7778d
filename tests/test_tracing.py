"""Traces (the otel extra): a request is a server span in the caller's trace, its stages are
child spans timed exactly as Server-Timing reports them; without an endpoint or the packages,
nothing is traced and nothing fails."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from screenshot_service.app import create_app
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture.timing import parse_server_timing
from screenshot_service.limits.keys import create_key
from screenshot_service.state.sqlite import SqliteStateStore
from screenshot_service.tracing import ENDPOINT_VARIABLE, install_tracing
from tests.conftest import ApiTestServer, base_settings
from tests.conftest import TestSite as Site

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_capture_is_one_span_with_its_stages_as_children(
    aiohttp_client: Any, tmp_path: Path, test_site: Site, shared_pool: BrowserPool,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = base_settings(tmp_path / "svc", test_site.port)
    state = SqliteStateStore(settings.state.sqlite.path)
    _, key = await create_key(state, "unlimited", "test")
    app = create_app(settings, pool=shared_pool, state=state)
    assert install_tracing(app, provider)
    client = await aiohttp_client(ApiTestServer(app))

    shot = await client.get("/v1/screenshot", params={"url": test_site.url + "/paint", "api_key": key},
                            headers={"traceparent": TRACEPARENT})
    assert shot.status == 200, await shot.text()
    refused = await client.get("/v1/screenshot", params={"url": test_site.url + "/paint", "api_key": "sk_wrong"})
    assert refused.status == 401
    timed_out = await client.get("/v1/screenshot", params={"url": test_site.url + "/slow?s=2", "api_key": key,
                                                           "timeout": "1"})
    assert timed_out.status == 504

    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /v1/screenshot"] * 3
    request = next(s for s in servers if s.attributes and s.attributes["http.response.status_code"] == 200)
    assert format(request.context.trace_id, "032x") == TRACE_ID  # joined the caller's trace
    assert request.attributes is not None
    assert request.attributes["screenshot.request_id"] == shot.headers["X-Request-ID"]
    assert request.attributes["url.path"] == "/v1/screenshot"
    assert key not in str(dict(request.attributes))  # no query string: it held the key

    stages = [s for s in spans if s.parent is not None and s.parent.span_id == request.context.span_id]
    assert {s.name for s in stages} == {"auth", "admission", "navigation", "capture", "store", "settle"}
    timing = parse_server_timing(shot.headers["Server-Timing"])
    for name in {s.name for s in stages}:
        traced_ms = sum((s.end_time or 0) - (s.start_time or 0) for s in stages if s.name == name) / 1e6
        assert abs(traced_ms - timing[name]) < 0.05, (name, traced_ms, timing[name])
    assert all(request.start_time <= (s.start_time or 0) <= (s.end_time or 0) <= (request.end_time or 0)
               for s in stages)

    refusal, timeout = servers[1:]
    assert refusal.attributes is not None and refusal.attributes["http.response.status_code"] == 401
    assert refusal.status.status_code != StatusCode.ERROR  # the caller's fault, not the service's
    assert [s.name for s in spans if s.parent is not None and s.parent.span_id == refusal.context.span_id] == ["auth"]

    # A failure: the request an error, and the stage it failed in is there, an error too, until the end.
    assert timeout.status.status_code == StatusCode.ERROR
    children = [s for s in spans if s.parent is not None and s.parent.span_id == timeout.context.span_id]
    failed = [s for s in children if s.status.status_code == StatusCode.ERROR]
    assert [s.name for s in failed] == ["navigation"], [(s.name, s.status.status_code) for s in children]
    assert (failed[0].end_time or 0) - (failed[0].start_time or 0) >= 0.9e9  # the 1 s it ran out of
    assert (failed[0].end_time or 0) <= (timeout.end_time or 0)
    assert parse_server_timing(timed_out.headers["Server-Timing"])["navigation"] >= 900  # still counted there
    provider.shutdown()


def test_no_endpoint_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINT_VARIABLE, raising=False)
    app = web.Application()
    assert not install_tracing(app)
    assert list(app.middlewares) == []


def test_an_endpoint_without_the_packages_traces_nothing_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(ENDPOINT_VARIABLE, "http://127.0.0.1:4318")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)  # not installed
    app = web.Application()
    with caplog.at_level(logging.WARNING, logger="screenshot_service.tracing"):
        assert not install_tracing(app)
    assert list(app.middlewares) == []
    assert "OpenTelemetry is not installed" in caplog.text


async def test_an_endpoint_with_the_packages_traces_and_flushes_on_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_VARIABLE, "http://127.0.0.1:9")  # nothing exported: no span is made
    app = web.Application()
    assert install_tracing(app)
    assert len(app.middlewares) == 1
    runner = web.AppRunner(app)
    await runner.setup()
    await runner.cleanup()  # shuts the provider down
