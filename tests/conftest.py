"""Real parts for every test: Chromium, a local aiohttp test site, SQLite state.

Everything runs on one session-wide event loop so that one warm Chromium pool
(``shared_pool``) serves most tests; tests that break or starve a pool on
purpose build their own with ``make_pool``.  All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from screenshot_service import config, config_loading, eventloop
from screenshot_service.app import create_app
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import SystemResolver
from screenshot_service.limits.keys import create_key
from screenshot_service.server import ApiRunner
from screenshot_service.state.sqlite import SqliteStateStore
from screenshot_service.wiring import start_browser, stop_browser
from tests import site

pytest_plugins = ["tests.s3_server", "tests.redis_server"]

T = TypeVar("T")


@dataclass
class SiteLog:
    """What the local test site saw, path by path."""

    hits: list[str] = field(default_factory=list)

    def count(self, path: str) -> int:
        return sum(1 for hit in self.hits if hit == path)


@dataclass
class TestSite:
    url: str
    port: int
    log: SiteLog


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, eventloop.LoopFactory]:
    """Every test runs on the event loop ``serve`` runs the service on (uvloop where installed)."""
    return {"service-loop": eventloop.loop_factory()}


@pytest.fixture(scope="session")
async def test_site() -> AsyncIterator[TestSite]:
    log = SiteLog()
    # Pages some tests leave hanging (/slow?s=60, /stall) are cut after 1 s at the end, not waited
    # out for aiohttp's default 60 s.
    runner = web.AppRunner(site.build(log.hits), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield TestSite(url=f"http://127.0.0.1:{port}", port=port, log=log)
    await runner.cleanup()


def base_settings(tmp_path: Path, site_port: int, **sections: dict[str, Any]) -> config.Settings:
    """Test settings: everything under tmp_path, the test site allowed through egress."""
    defaults: dict[str, dict[str, Any]] = {
        "egress": {"allow": [f"127.0.0.1:{site_port}"]},
        "storage": {"local": {"path": str(tmp_path / "captures")}},
        "state": {"sqlite": {"path": str(tmp_path / "state.sqlite3")}},
        "browser": {"pool_size": 2, "max_queue": 8},
        "server": {"drain_seconds": 5.0},
        # Most tests fire many requests on one key: a plan that never limits them.
        "plans": {"unlimited": {"requests_per_second": 100000, "burst": 100000,
                                "monthly_captures": 10**9, "concurrency": 1000}},
    }
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    return config_loading.replace(config.Settings(), **defaults)


@pytest.fixture(scope="session")
async def shared_pool(test_site: TestSite) -> AsyncIterator[BrowserPool]:
    """One warm pool for most tests; its egress proxy lets the test site through."""
    pool, proxy = await start_browser(
        config.BrowserConfig(pool_size=2, max_queue=8),
        EgressPolicy.from_config(config.EgressConfig(allow=[f"127.0.0.1:{test_site.port}"])),
        SystemResolver(),
    )
    yield pool
    await stop_browser(pool, proxy)


@pytest.fixture
async def make_pool(test_site: TestSite) -> AsyncIterator[Callable[..., Any]]:
    """Build a private pool (closed after the test) for tests that abuse one.

    ``make_pool(allow=[...], job_slots=N, **browser settings)``; the test site is allowed by
    default; ``job_slots`` > 0 adds the jobs lane.
    """
    built: list[tuple[BrowserPool, Any]] = []

    async def make(*, allow: list[str] | None = None, job_slots: int = 0, **browser: Any) -> BrowserPool:
        built.append(await start_pool(test_site, allow=allow, job_slots=job_slots, **browser))
        return built[-1][0]

    yield make
    for pool, proxy in built:
        await stop_browser(pool, proxy)


async def start_pool(
    test_site: TestSite, *, allow: list[str] | None = None, job_slots: int = 0, **browser: Any
) -> tuple[BrowserPool, Any]:
    """A pool and its egress proxy (stop both with ``stop_browser``), as ``make_pool`` builds them."""
    cfg = config_loading.replace(config.Settings(), browser=browser).browser
    allow = [f"127.0.0.1:{test_site.port}"] if allow is None else allow
    policy = EgressPolicy.from_config(config.EgressConfig(allow=allow))
    return await start_browser(cfg, policy, SystemResolver(), job_slots=job_slots)


class ApiTestServer(TestServer):
    """aiohttp's TestServer serving through ``ApiRunner``, as ``serve`` does (parser errors as JSON)."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return ApiRunner(self.app, **kwargs)


@dataclass
class Service:
    """A running app under test, its key and what it is built from."""

    client: TestClient
    key: str
    key_id: str
    settings: config.Settings
    state: SqliteStateStore
    site: TestSite

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def shot(self, path: str = "/paint", **params: Any) -> Any:
        query = {"url": self.site.url + path, "api_key": self.key, **{k: str(v) for k, v in params.items()}}
        return await self.client.get("/v1/screenshot", params=query)


@pytest.fixture
async def make_service(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool
) -> Callable[..., Any]:
    """make_service(pool=None, plan="unlimited", resolver=None, **settings sections) -> Service."""
    counter = 0

    async def make(
        *, pool: BrowserPool | None = None, plan: str = "unlimited", resolver: Any = None, **sections: Any
    ) -> Service:
        nonlocal counter
        counter += 1
        root = tmp_path / f"svc{counter}"
        settings = base_settings(root, test_site.port, **sections)
        state = SqliteStateStore(settings.state.sqlite.path)
        record, raw = await create_key(state, plan, "test")
        app = create_app(settings, pool=pool or shared_pool, state=state, resolver=resolver)
        client = await aiohttp_client(ApiTestServer(app))
        return Service(client=client, key=raw, key_id=record.id, settings=settings, state=state, site=test_site)

    return make


@pytest.fixture
async def service(make_service: Callable[..., Any]) -> Service:
    return await make_service()


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def kill_process_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` (plain or async) until it holds, for at most ``timeout`` s.

    The one way tests wait for something to happen: on the condition itself, with a
    bound, never by sleeping a guessed time.  True once it holds, False if it never did.
    """

    async def holds() -> bool:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await holds():
            return True
        await asyncio.sleep(0.05)
    return await holds()


# Slack on top of a deadline the service promises: generous, for a loaded 2-core machine.
DEADLINE_SLACK = 10.0


async def answered_by(awaitable: Awaitable[T], deadline: float, slack: float = DEADLINE_SLACK) -> T:
    """A deadline guarantee, not a timing: the answer comes no later than ``deadline`` + ``slack`` s."""
    try:
        return await asyncio.wait_for(awaitable, deadline + slack)
    except TimeoutError:
        raise AssertionError(f"no answer within the {deadline:g} s deadline (+{slack:g} s slack)") from None
