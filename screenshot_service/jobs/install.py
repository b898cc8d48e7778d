"""Wiring the jobs package into an app: routes, the job store and the workers.

One cleanup context owns everything jobs need — the store, an HTTP client for
webhooks (sent through the app's egress proxy), the runner and the retention
sweeper — so they start after the state store, proxy, storage and browser pool
they use and stop before them.  Stopping lets jobs in flight finish within ``drain_seconds`` and
gives the rest back to the queue.  That time counts from the moment the app starts draining (an
``on_shutdown`` hook placed first), the same moment the sync captures' drain starts, so the
jobs' share of a shutdown is ``drain_seconds`` in all, not a second wait after the sync one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..api import batches as batch_handlers
from ..api import jobs as handlers
from ..appkeys import (
    ADMISSION,
    CAPTURE,
    LEDGER,
    LIFECYCLE,
    METRICS,
    PIPELINE,
    POLICY,
    POOL,
    PROXY,
    RESOLVER,
    SETTINGS,
    STATE,
)
from ..browser.admission import JOBS as JOBS_LANE
from ..config import Settings
from ..state.errors import StateError
from .batch_service import BatchService
from .keys import BATCHES, JOBS, JOBS_INSTALLED, JOBS_TUNING, JobsTuning
from .runner import JobRunner
from .service import JobService
from .store import JobStore
from .webhooks import WebhookSender

log = logging.getLogger("screenshot_service.jobs")

# A store handed in by a test; the app neither opens nor closes it.
_GIVEN_STORE = web.AppKey("jobs_given_store", JobStore)


def install_jobs(
    app: web.Application,
    *,
    store: JobStore | None = None,
    lease_seconds: float | None = None,
    poll_interval: float | None = None,
    webhook_backoff: float | None = None,
    sweep_interval: float | None = None,
) -> None:
    """Add /v1/jobs, /v1/batches and the workers to ``app``; called again (tests), it only adjusts the tuning."""
    changes = {"lease_seconds": lease_seconds, "poll_interval": poll_interval,
               "webhook_backoff": webhook_backoff, "sweep_interval": sweep_interval}  # fmt: skip
    tuning = app.get(JOBS_TUNING, JobsTuning())
    app[JOBS_TUNING] = dataclasses.replace(tuning, **{k: v for k, v in changes.items() if v is not None})
    if store is not None:
        app[_GIVEN_STORE] = store
    if app.get(JOBS_INSTALLED):
        return  # create_app installed jobs already; a test only adjusted the tuning
    app[JOBS_INSTALLED] = True

    app.router.add_post("/v1/jobs", handlers.post_job)
    app.router.add_get("/v1/jobs/{id}", handlers.get_job)
    app.router.add_delete("/v1/jobs/{id}", handlers.delete_job)
    app.router.add_post("/v1/batches", batch_handlers.post_batch)
    app.router.add_get("/v1/batches/{id}", batch_handlers.get_batch)
    app.router.add_delete("/v1/batches/{id}", batch_handlers.delete_batch)
    app.cleanup_ctx.append(_jobs_ctx)
    app.on_shutdown.insert(0, _begin_drain)  # before app._drain, which waits for the pool to idle


async def _begin_drain(app: web.Application) -> None:
    service = app.get(JOBS)
    if service is not None:
        service.runner.begin_stop(app[SETTINGS].server.drain_seconds)


def open_job_store(settings: Settings) -> JobStore:
    """Jobs live where the state lives: the same SQLite file or the same Redis."""
    if settings.state.backend == "redis":
        from .redis_jobs import RedisJobStore

        return RedisJobStore(str(settings.state.redis.url), cluster=settings.state.redis.cluster)
    from .sqlite_jobs import SqliteJobStore

    return SqliteJobStore(settings.state.sqlite.path)


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    tuning = app[JOBS_TUNING]
    pool_size = app[POOL].cfg.pool_size
    if not app[POOL].job_slots and settings.jobs.workers >= pool_size:  # jobs share the sync lane
        log.warning("jobs.workers=%d >= browser.pool_size=%d: a job backlog can hold every browser slot",
                    settings.jobs.workers, pool_size)
    retention = settings.storage.retention_days * 86400.0
    async with contextlib.AsyncExitStack() as stack:  # torn down in reverse: workers first, store last
        given = app.get(_GIVEN_STORE)
        store = given if given is not None else open_job_store(settings)
        if given is None:
            stack.push_async_callback(store.close)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        # Webhook POSTs go through the app's egress proxy: checked per connection, like the browser.
        sender = WebhookSender(
            session, proxy_url=app[PROXY].proxy_server, attempts=settings.jobs.webhook_attempts,
            timeout=settings.jobs.webhook_timeout_seconds, backoff=tuning.webhook_backoff,
        )  # fmt: skip
        lifecycle = app[LIFECYCLE]
        runner = JobRunner(
            store, app[STATE], app[LEDGER], app[PIPELINE], sender, workers=settings.jobs.workers,
            retention_seconds=retention, accepting=lambda: not lifecycle.draining, lease_seconds=tuning.lease_seconds,
            poll_interval=tuning.poll_interval, on_state=app[METRICS].job_state,
            on_wait=app[METRICS].queues.observe_job_wait, on_batch_item=app[METRICS].batch_item,
        )  # fmt: skip
        app[JOBS] = JobService(
            store, app[ADMISSION], runner, app[POLICY], app[RESOLVER], retention_seconds=retention,
            proxy_pools=tuple(settings.proxies), on_batch_item=app[METRICS].batch_item,
            baselines=changes.find if (changes := app[CAPTURE].changes) is not None else None,
        )
        app[BATCHES] = BatchService(app[JOBS], max_batch=settings.jobs.max_batch,
                                    on_submitted=app[METRICS].batch_submitted, on_canceled=app[METRICS].batch_item)
        app[METRICS].queues.probe(JOBS_LANE, store.queued)
        stack.callback(app[METRICS].queues.probe, JOBS_LANE, None)
        runner.start()
        stack.push_async_callback(runner.stop, settings.server.drain_seconds)
        sweeper = asyncio.create_task(_sweep_forever(store, tuning.sweep_interval))
        stack.push_async_callback(_cancel, sweeper)
        yield


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sweep_forever(store: JobStore, interval: float) -> None:
    while True:
        try:
            removed = await store.sweep()
            if removed:
                log.info("retention sweep removed %d job records", removed)
        except StateError as error:
            log.warning("job retention sweep failed: %s", error.message)
        await asyncio.sleep(interval)
