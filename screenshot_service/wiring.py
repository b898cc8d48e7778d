"""Building the big parts from settings, shared by the app, the CLI and tests."""

from __future__ import annotations

from .browser.pool import BrowserPool
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
    browser: BrowserConfig, policy: EgressPolicy, resolver: Resolver, proxy: EgressProxy | None = None
) -> tuple[BrowserPool, EgressProxy]:
    """A warm pool whose every request goes through a started egress proxy (made here if not given)."""
    if proxy is None:
        proxy = EgressProxy(policy, resolver)
        await proxy.start()
    try:
        pool = BrowserPool(browser, extra_flags=browser_flags(proxy), context_hook=ProxyContextHook(proxy))
        await pool.start()
    except BaseException:
        await proxy.stop()
        raise
    return pool, proxy


async def stop_browser(pool: BrowserPool, proxy: EgressProxy) -> None:
    await pool.close()
    await proxy.stop()


def open_backend(settings: Settings) -> tuple[StateStore, RateLimiter, ConcurrencyGate]:
    """The configured state store with its matching rate limiter and concurrency gate."""
    if settings.state.backend == "redis":
        from .state.redis import open_redis_backend

        return open_redis_backend(str(settings.state.redis.url))
    return SqliteStateStore(settings.state.sqlite.path), LocalRateLimiter(), LocalConcurrencyGate()


def open_state(settings: Settings) -> StateStore:
    return open_backend(settings)[0]
