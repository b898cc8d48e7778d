"""Building the big parts from settings, shared by the app, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass

from .browser.pool import BrowserPool
from .capture import render
from .capture.cache import CaptureCache, RedisCaptureCache, SqliteCaptureCache
from .capture.capture_records import CaptureRecords, RedisCaptureRecords, SqliteCaptureRecords
from .config import BrowserConfig, Settings
from .egress.hook import ProxyContextHook, browser_flags
from .egress.policy import EgressPolicy
from .egress.proxy import EgressProxy
from .egress.resolver import Resolver
from .limits.concurrency import ConcurrencyGate, LocalConcurrencyGate
from .limits.rate import LocalRateLimiter, RateLimiter
from .state.base import StateStore
from .state.sqlite import SqliteStateStore


async def start_browser(
    browser: BrowserConfig,
    policy: EgressPolicy,
    resolver: Resolver,
    proxy: EgressProxy | None = None,
    *,
    job_slots: int = 0,
) -> tuple[BrowserPool, EgressProxy]:
    """A warm pool whose every request goes through a started egress proxy (made here if not given).

    ``job_slots`` > 0 gives asynchronous jobs their own low-priority lane of that many contexts.
    """
    if proxy is None:
        proxy = EgressProxy(policy, resolver)
        await proxy.start()
    try:
        pool = BrowserPool(
            browser,
            extra_flags=browser_flags(proxy),
            context_hook=ProxyContextHook(proxy),
            context_prime=render.prime,
            job_slots=job_slots,
        )
        await pool.start()
    except BaseException:
        await proxy.stop()
        raise
    return pool, proxy


async def stop_browser(pool: BrowserPool, proxy: EgressProxy) -> None:
    await pool.close()
    await proxy.stop()


@dataclass(frozen=True)
class Backend:
    """The state store and the pieces that must live where it lives."""

    state: StateStore
    rate: RateLimiter
    gate: ConcurrencyGate
    cache: CaptureCache
    records: CaptureRecords  # every capture per key, for compare_to

    async def close(self) -> None:
        await self.cache.close()
        await self.records.close()
        await self.state.close()


def open_backend(settings: Settings) -> Backend:
    """The configured state store with its matching rate limiter, concurrency gate and cache."""
    if settings.state.backend == "redis":
        from .state.redis import open_redis_backend

        store, rate, gate = open_redis_backend(str(settings.state.redis.url), cluster=settings.state.redis.cluster)
        return Backend(store, rate, gate, RedisCaptureCache(store.client), RedisCaptureRecords(store.client))
    return local_backend(SqliteStateStore(settings.state.sqlite.path), settings.state.sqlite.path)


def local_backend(state: StateStore, sqlite_path: str) -> Backend:
    """In-process limits around a given store (the embedded backend, and tests' overrides)."""
    return Backend(state, LocalRateLimiter(), LocalConcurrencyGate(), SqliteCaptureCache(sqlite_path),
                   SqliteCaptureRecords(sqlite_path))


def open_state(settings: Settings) -> StateStore:
    if settings.state.backend == "redis":
        from .state.redis import RedisStateStore

        return RedisStateStore(str(settings.state.redis.url), cluster=settings.state.redis.cluster)
    return SqliteStateStore(settings.state.sqlite.path)
