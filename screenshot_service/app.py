"""create_app: settings in, a wired aiohttp application out.

Each resource (state store, storage, browser pool, capture service) has its
own cleanup context, so it is created inside the running loop, torn down in
reverse order, and can be replaced by a ready-made object for tests
(``overrides``).  Shutdown first flips the service to draining (503 for new
work, /readyz 503), lets captures in flight finish within
``server.drain_seconds``, then closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import web

from . import appkeys as keys
from .api import files, health, openapi, screenshot, usage
from .api.body import UNAUTHENTICATED_READS, UnauthenticatedReads
from .api.error_middleware import error_middleware
from .api.limit_headers import add_limit_headers
from .api.metrics import install_metrics
from .api.tester import install_tester
from .browser.pool import BrowserPool
from .capture.pipeline import CapturePipeline
from .capture.service import CaptureService
from .config import Settings
from .egress.policy import EgressPolicy
from .egress.proxy import EgressProxy
from .egress.resolver import Resolver, SystemResolver
from .egress.upstream import ProxyPools
from .errors import BrowserUnavailable
from .jobs.install import install_jobs
from .limits.admission import Admission
from .limits.concurrency import ConcurrencyGate
from .limits.ledger import Ledger
from .limits.rate import RateLimiter
from .monitors.install import install_monitors
from .observability import Handler, request_id_middleware
from .state.base import StateStore
from .storage.base import Storage
from .storage.local import LocalStorage
from .storage.s3 import S3Storage
from .tracing import install_tracing
from .wiring import local_backend, open_backend, start_browser

# Paths that keep answering while the service drains.
_ALWAYS_OPEN = ("/healthz", "/readyz", "/metrics")
# aiohttp's wait for handlers after _drain (run_app's shutdown_timeout): the drain already had
# drain_seconds, so this only lets cancelled handlers write their answer and settle.
SHUTDOWN_GRACE_SECONDS = 1.0


def create_app(
    settings: Settings,
    *,
    pool: BrowserPool | None = None,
    storage: Storage | None = None,
    state: StateStore | None = None,
    rate_limiter: RateLimiter | None = None,
    concurrency: ConcurrencyGate | None = None,
    resolver: Resolver | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[
            _close_middleware, _started_middleware, request_id_middleware, error_middleware, _draining_middleware
        ],
        client_max_size=settings.server.max_body_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.LIFECYCLE] = keys.Lifecycle()
    # First, so every later part (jobs, capture) finds app[METRICS]; its middleware goes
    # right before error_middleware, so it counts the status the client actually receives.
    install_metrics(app)
    install_tracing(app)  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set (and the otel extra installed)
    app[UNAUTHENTICATED_READS] = UnauthenticatedReads(settings.server.max_unauthenticated)
    app[keys.POLICY] = EgressPolicy.from_config(settings.egress)
    app[keys.RESOLVER] = resolver or SystemResolver()

    # Each part after the parts it uses: aiohttp tears them down in reverse, so nothing closes
    # while something still uses it (jobs, appended by install_jobs, stop first; state last).
    app.cleanup_ctx.append(_state_ctx(state, rate_limiter, concurrency))
    app.cleanup_ctx.append(_proxy_ctx)
    app.cleanup_ctx.append(_storage_ctx(storage))
    app.cleanup_ctx.append(_pool_ctx(pool))
    app.cleanup_ctx.append(_capture_ctx)
    app.on_shutdown.append(_drain)
    app.on_response_prepare.append(add_limit_headers)
    app.on_response_prepare.append(screenshot.add_server_timing)

    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/v1/screenshot", screenshot.get_screenshot)
    app.router.add_post("/v1/screenshot", screenshot.post_screenshot)
    app.router.add_get("/v1/files/{name}", files.get_file)
    app.router.add_get("/v1/usage", usage.get_usage)
    install_tester(app)  # GET /
    app.router.add_get("/v1/openapi.json", openapi.get_openapi)
    install_jobs(app)  # /v1/jobs and the job workers' cleanup context (after the capture service's)
    install_monitors(app)  # /v1/monitors and their scheduler (stopped before the job workers)
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiohttp's request handler (run_app, AppRunner, TestServer).

    aiohttp arms its keep-alive timer as soon as a connection opens and closes the connection
    when it fires while no complete head has arrived: that timer is the head read timeout (and
    the idle keep-alive limit).  Heads are bounded in size by aiohttp's line and field limits,
    given here so they are stated, not assumed.  ``lingering_time``: after an early answer (401
    or 413 before the body was read) the rest of the body is drained at most this long, so the
    client can read the answer, then the connection closes.
    """
    server = settings.server
    return {
        "keepalive_timeout": server.head_timeout_seconds,
        "lingering_time": server.body_timeout_seconds,
        "max_line_size": 8190,
        "max_field_size": 8190,
        "max_headers": 128,
    }


# -- middlewares -------------------------------------------------------------------------


@web.middleware
async def _close_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # An answer marked "Connection: close" (a body that timed out) is sent, then the connection is
    # closed at once: aiohttp would otherwise linger, reading a body the client stopped sending.
    response = await handler(request)
    if response.headers.get("Connection", "").lower() == "close" and not response.prepared:
        await response.prepare(request)
        await response.write_eof()
        if request.protocol is not None:
            request.protocol.force_close()
    return response


@web.middleware
async def _started_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The capture deadline counts from here: the earliest point we see the request.
    request[keys.STARTED] = asyncio.get_running_loop().time()
    return await handler(request)


@web.middleware
async def _draining_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    lifecycle = request.app[keys.LIFECYCLE]
    if request.path in _ALWAYS_OPEN:
        return await handler(request)
    if lifecycle.draining:
        raise BrowserUnavailable("the service is shutting down; retry on another instance", retry_after=5)
    lifecycle.enter()
    try:
        return await handler(request)
    finally:
        lifecycle.leave()


# -- resources ------------------------------------------------------------------------------


def _state_ctx(
    given: StateStore | None, rate_limiter: RateLimiter | None, concurrency: ConcurrencyGate | None
) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        backend = open_backend(settings) if given is None else local_backend(given, settings.state.sqlite.path)
        app[keys.STATE] = backend.state
        app[keys.CACHE] = backend.cache
        app[keys.RECORDS] = backend.records
        ledger = Ledger(backend.state, on_settled=app[keys.METRICS].count_settlement)
        app[keys.LEDGER] = ledger
        app[keys.METRICS].watch_ledger(lambda: ledger.pending)
        app[keys.ADMISSION] = Admission(
            backend.state, rate_limiter or backend.rate, concurrency or backend.gate, settings.plans, ledger
        )
        await ledger.start()
        yield
        await ledger.stop()  # after every refund sent (a cut request's too) has landed or been queued
        if given is None:
            await backend.close()
        else:
            await backend.cache.close()
            await backend.records.close()

    return ctx


async def _proxy_ctx(app: web.Application) -> AsyncIterator[None]:
    proxy = EgressProxy(app[keys.POLICY], app[keys.RESOLVER])
    await proxy.start()
    app[keys.PROXY] = proxy
    yield
    await proxy.stop()


def _storage_ctx(given: Storage | None) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        if given is not None:
            app[keys.STORAGE] = given
            yield
        elif settings.storage.backend == "s3":
            # One aioboto3 client for the process lifetime.
            async with S3Storage(settings.storage) as s3:
                app[keys.STORAGE] = s3
                yield
        else:
            local = LocalStorage(settings.storage.local.path, settings.storage.retention_days)
            app[keys.STORAGE] = local
            sweeper = asyncio.create_task(local.sweep_forever())
            yield
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    return ctx


def _pool_ctx(given: BrowserPool | None) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[keys.POOL] = given
            yield
            return
        settings = app[keys.SETTINGS]
        pool, _ = await start_browser(
            settings.browser,
            app[keys.POLICY],
            app[keys.RESOLVER],
            app[keys.PROXY],
            job_slots=settings.jobs.workers,
        )
        app[keys.POOL] = pool
        yield
        await pool.close()

    return ctx


async def _capture_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.CAPTURE] = CaptureService(
        app[keys.POOL],
        app[keys.STORAGE],
        app[keys.POLICY],
        app[keys.RESOLVER],
        deadline_seconds=app[keys.SETTINGS].capture.deadline_seconds,
        max_pdf_pages=app[keys.SETTINGS].capture.max_pdf_pages,
        egress_proxy_url=app[keys.PROXY].proxy_server,
        metrics=app[keys.METRICS],
        cache=app[keys.CACHE],
        proxies=ProxyPools.from_config(app[keys.SETTINGS].proxies),
        records=app[keys.RECORDS],
        retention=timedelta(days=app[keys.SETTINGS].storage.retention_days),
    )
    app[keys.PIPELINE] = CapturePipeline(app[keys.CAPTURE], app[keys.ADMISSION])
    admission, observe = app[keys.POOL].admission, app[keys.METRICS].queues.observe_sync_wait
    admission.on_sync_wait = observe
    yield
    if admission.on_sync_wait == observe:  # a pool handed to several apps (tests) keeps the newest's
        admission.on_sync_wait = None


async def _drain(app: web.Application) -> None:
    """New work is refused by _draining_middleware; what is in flight gets ``drain_seconds`` in all.

    One deadline covers the requests (a capture, or one still waiting for its place, reading
    its body, storing its image) and the pool's leases (jobs' captures too).  aiohttp's own
    wait for handlers comes after this, so it is given only ``SHUTDOWN_GRACE_SECONDS``: what is
    still running then is cancelled, and its credit refunded, instead of a second drain."""
    lifecycle = app[keys.LIFECYCLE]
    lifecycle.draining = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + app[keys.SETTINGS].server.drain_seconds
    await lifecycle.wait_idle(deadline - loop.time())
    if keys.POOL in app:
        await app[keys.POOL].wait_idle(max(0.0, deadline - loop.time()))
