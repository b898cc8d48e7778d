"""Prometheus metrics: one registry per app, the request middleware, hooks for services.

Each ``Metrics`` owns its own ``CollectorRegistry`` (never the process-global
one), so several apps in one process — tests, the bench harness — never see
each other's numbers or collide on registration.

Label values are always drawn from closed sets (route patterns, the error
vocabulary of ``errors.py``, fixed phases and job states): a scanner probing
random paths or methods must not be able to grow the number of series.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import error_codes
from .monitor_metrics import MonitorMetrics
from .queue_metrics import QueueMetrics

NAMESPACE = "screenshot"
PHASES = ("queue", "navigation", "capture", "storage", "total")
JOB_STATES = ("queued", "running", "succeeded", "failed", "canceled")
BATCH_ITEM_OUTCOMES = ("queued", "succeeded", "failed", "canceled")
# Captures take 0.05–30 s (the hard deadline); queue waits are often near zero.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
                    7.5, 10.0, 15.0, 20.0, 30.0)
# Codes meaning "turned away without doing the work" (auth, limits, policy, overload).
REJECTIONS = ("rate_limited", "concurrency_limited", "quota_exceeded", "overloaded", "browser_unavailable",
              "state_unavailable", "blocked_target", "invalid_url", "invalid_parameter", "malformed_body",
              "payload_too_large", "missing_api_key", "invalid_api_key", "idempotency_mismatch")
SETTLEMENTS = ("committed", "refunded", "reclaimed")  # limits.ledger.OUTCOMES
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Pool stats keys exported as gauges (levels) and as counters (monotonic since start).
_POOL_GAUGES = {
    "size": "Browser slots (pool_size).",
    "in_use": "Slots leased by captures right now.",
    "waiting": "Requests queued for a slot.",
    "warm": "Fresh contexts ready to lease.",
    "warming": "Contexts being created right now.",
    "jobs_size": "Contexts of the jobs lane ([jobs] workers; 0 = jobs share the sync slots).",
    "jobs_in_use": "Jobs-lane contexts leased by job captures right now.",
    "browsers": "Live Chromium processes.",
}
_POOL_COUNTERS = {
    "browser_restarts": ("restarts", "Chromium relaunches after a crash or a hang."),
    "browser_recycles": ("recycles", "Planned Chromium replacements after recycle_after captures."),
    "pool_leases": ("captures", "Contexts leased (captures attempted) since start."),
}

PoolStats = Callable[[], Mapping[str, int] | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_codes() -> frozenset[str]:
    """Every code the error middleware can render (errors.py's table)."""
    return frozenset(code for codes in error_codes().values() for code in codes)


class _PoolCollector(Collector):
    """Reads the pool's own bookkeeping at scrape time, so nothing can drift out of date."""

    def __init__(self, source: PoolStats) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not call the source: the pool may not exist yet

    def collect(self) -> Iterable[Metric]:
        stats = self._source()
        if stats is None:
            return
        for key, doc in _POOL_GAUGES.items():
            yield GaugeMetricFamily(f"{NAMESPACE}_pool_{key}", doc, value=stats.get(key, 0))
        for name, (key, doc) in _POOL_COUNTERS.items():
            yield CounterMetricFamily(f"{NAMESPACE}_{name}", doc, value=stats.get(key, 0))


class Metrics:
    def __init__(self, pool_stats: PoolStats | None = None) -> None:
        self.registry = CollectorRegistry()
        opts: dict[str, Any] = {"namespace": NAMESPACE, "registry": self.registry}
        self.http_requests = Counter(
            "http_requests", "HTTP requests by route pattern, method and final status.",
            ["endpoint", "method", "status"], **opts)
        self.http_duration = Histogram(
            "http_request_duration_seconds", "Time to the handler's response, by route pattern.",
            ["endpoint", "method"], buckets=DURATION_BUCKETS, **opts)
        self.capture_duration = Histogram(
            "capture_duration_seconds", "Successful capture time by phase (total counts from arrival).",
            ["phase"], buckets=DURATION_BUCKETS, **opts)
        self.rejections = Counter(
            "rejections", "Requests turned away, by error code.", ["reason"], **opts)
        self.errors = Counter(
            "api_errors", "Every error response, by error code.", ["code"], **opts)
        self.egress_blocked = Counter(
            "egress_blocked_requests", "Browser requests refused by the egress policy.", **opts)
        self.jobs = Counter("jobs", "Job state transitions.", ["state"], **opts)
        self.batches = Counter("batches", "Batches accepted (POST /v1/batches).", **opts)
        self.batch_items = Counter(
            "batch_items", "Batch items accepted (queued) and ended (succeeded, failed, canceled); each is a job "
            "too.", ["outcome"], **opts)
        self.settlements = Counter(
            "credit_settlements", "Reserved credits settled: committed (delivered), refunded, or reclaimed "
            "(refunded once the lease of a dead owner ran out).", ["outcome"], **opts)
        self.refunds_pending = Gauge(
            "ledger_refunds_pending", "Refunds the state store has not taken yet (retried every second).", **opts)
        self.storage_errors = Counter(
            "storage_errors", "Failed or timed-out stores ('customer' = the caller's own bucket).",
            ["target"], **opts)
        self.diff_ratio = Histogram(
            "visual_diff_changed_ratio", "Visual diffs computed (compare_to), by the share of pixels changed.",
            buckets=(0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0), **opts)
        self.queues = QueueMetrics(self.registry)  # queue depth and wait by lane (autoscaling)
        self.monitors = MonitorMetrics(self.registry)  # monitor runs by outcome, their lag
        self._codes = _error_codes()
        if pool_stats is not None:
            self.registry.register(_PoolCollector(pool_stats))
        # Zero-valued series from the start, so rate() and absent()-style alerts work
        # before the first event.
        for phase in PHASES:
            self.capture_duration.labels(phase)
        for state in JOB_STATES:
            self.jobs.labels(state)
        for outcome in BATCH_ITEM_OUTCOMES:
            self.batch_items.labels(outcome)
        for reason in REJECTIONS:
            self.rejections.labels(reason)
        for target in ("service", "customer"):
            self.storage_errors.labels(target)
        for outcome in SETTLEMENTS:
            self.settlements.labels(outcome)

    # -- hooks for services -----------------------------------------------------------
    def observe_phase(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown capture phase {phase!r}; one of {PHASES}")
        self.capture_duration.labels(phase).observe(max(0.0, seconds))

    def count_blocked(self, n: int) -> None:
        if n > 0:
            self.egress_blocked.inc(n)

    def count_storage_error(self, *, customer: bool = False) -> None:
        self.storage_errors.labels("customer" if customer else "service").inc()

    def count_settlement(self, outcome: str, n: int = 1) -> None:
        self.settlements.labels(outcome if outcome in SETTLEMENTS else "other").inc(n)

    def watch_ledger(self, pending_refunds: Callable[[], int]) -> None:
        self.refunds_pending.set_function(pending_refunds)

    def observe_diff(self, changed_ratio: float) -> None:
        self.diff_ratio.observe(changed_ratio)

    def job_state(self, state: str) -> None:
        self.jobs.labels(state if state in JOB_STATES else "other").inc()

    def batch_submitted(self, items: int) -> None:
        self.batches.inc()
        self.batch_items.labels("queued").inc(items)

    def batch_item(self, outcome: str, n: int = 1) -> None:
        self.batch_items.labels(outcome if outcome in BATCH_ITEM_OUTCOMES else "other").inc(n)

    # -- requests ------------------------------------------------------------------------
    def count_error(self, code: str) -> None:
        code = code if code in self._codes else "other"
        self.errors.labels(code).inc()
        if code in REJECTIONS:
            self.rejections.labels(code).inc()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.http_requests.labels(endpoint, method, str(status)).inc()
        self.http_duration.labels(endpoint, method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)



def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count every request by route pattern, method and the status the client gets.

    Place it OUTSIDE ``error_middleware`` (earlier in the list), so that it sees
    the rendered JSON error responses rather than exceptions.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        began = time.perf_counter()
        status = 500  # only if something escapes the error middleware
        try:
            response = await handler(request)
            status = response.status
            code = _error_code(response)
            if code is not None:
                metrics.count_error(code)
            return response
        except web.HTTPException as exc:  # redirects and the like pass the error middleware
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # client went away (nginx's convention)
            raise
        finally:
            metrics.observe_request(_endpoint(request), request.method, status, time.perf_counter() - began)

    return middleware


def _endpoint(request: web.Request) -> str:
    # The route pattern (/v1/files/{name}), never the raw path: bounded label values.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _error_code(response: web.StreamResponse) -> str | None:
    """The ``error.code`` of a JSON error body.

    The error middleware is the one place errors become JSON, and its body is the
    stable record of the code: reading it here avoids a second hook in every raiser.
    """
    if response.status < 400 or not isinstance(response, web.Response):
        return None
    body = response.body
    if response.content_type != "application/json" or not isinstance(body, bytes) or len(body) > 65536:
        return None
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None
