"""Wiring monitors into an app: routes, the monitor store, the scheduler and its webhooks.

The store lives where the state lives (the same SQLite file or the same Redis), like the job
store.  One cleanup context owns the store, an HTTP client for webhooks (sent through the app's
egress proxy) and the scheduler, so they start after the parts they use and stop before them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..api import monitors as handlers
from ..appkeys import ADMISSION, METRICS, PIPELINE, POLICY, PROXY, RESOLVER, SETTINGS, STATE
from ..config import Settings
from ..jobs.webhooks import WebhookSender
from .keys import MONITOR_SCHEDULER, MONITORS, MONITORS_INSTALLED, MONITORS_TUNING, MonitorsTuning
from .runs import MonitorRuns
from .scheduler import MonitorScheduler
from .service import MonitorService
from .store import MonitorStore


def install_monitors(app: web.Application, *, poll_interval: float | None = None) -> None:
    """Add /v1/monitors and the scheduler to ``app``; called again (tests), it only adjusts the tuning."""
    if poll_interval is not None:
        app[MONITORS_TUNING] = MonitorsTuning(poll_interval=poll_interval)
    if app.get(MONITORS_INSTALLED):
        return
    app[MONITORS_INSTALLED] = True
    app.router.add_post("/v1/monitors", handlers.post_monitor)
    app.router.add_get("/v1/monitors", handlers.list_monitors)
    app.router.add_get("/v1/monitors/{id}", handlers.get_monitor)
    app.router.add_delete("/v1/monitors/{id}", handlers.delete_monitor)
    app.cleanup_ctx.append(_monitors_ctx)
    app.on_shutdown.insert(0, _stop_claiming)  # draining: no new run starts while in-flight work ends


async def _stop_claiming(app: web.Application) -> None:
    scheduler = app.get(MONITOR_SCHEDULER)
    if scheduler is not None:
        scheduler.stop_claiming()


def open_monitor_store(settings: Settings) -> MonitorStore:
    if settings.state.backend == "redis":
        from .redis_store import RedisMonitorStore

        return RedisMonitorStore(str(settings.state.redis.url), cluster=settings.state.redis.cluster)
    from .sqlite_store import SqliteMonitorStore

    return SqliteMonitorStore(settings.state.sqlite.path)


async def _monitors_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    tuning = app.get(MONITORS_TUNING, MonitorsTuning())
    async with contextlib.AsyncExitStack() as stack:  # torn down in reverse: scheduler first, store last
        store = open_monitor_store(settings)
        stack.push_async_callback(store.close)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        sender = WebhookSender(
            session, proxy_url=app[PROXY].proxy_server, attempts=settings.jobs.webhook_attempts,
            timeout=settings.jobs.webhook_timeout_seconds,
        )  # fmt: skip
        runs = MonitorRuns(store, app[STATE], app[ADMISSION], app[PIPELINE], sender, app[METRICS].monitors)
        scheduler = MonitorScheduler(store, runs, workers=settings.monitors.workers,
                                     poll_interval=tuning.poll_interval)  # fmt: skip
        app[MONITORS] = MonitorService(
            store, app[ADMISSION], app[POLICY], app[RESOLVER], min_interval=settings.monitors.min_interval_seconds,
            max_interval=settings.storage.retention_days * 86400, proxy_pools=tuple(settings.proxies),
            wake=scheduler.wake,
        )  # fmt: skip
        app[MONITOR_SCHEDULER] = scheduler
        scheduler.start()
        stack.push_async_callback(scheduler.stop, settings.server.drain_seconds)
        yield
