"""The job runner's own faults, with real parts: Chromium, redis-server, SQLite files.

- A store that stalls (redis-server SIGSTOPped, the SQLite file write-locked by
  another connection) while a job heartbeats or stores its result costs the job
  no run: it is captured once, succeeds, and is charged once.
- Shutdown takes ``server.drain_seconds`` once, not once per waiting step, and
  the job it cuts short is given back, not failed; a restart runs it.

Every step waits on a condition, with a bound; nothing is ordered by sleeping.
The target page is a gate of the test's own: it answers only when the test
opens it, so "the capture is still running" is a fact, not a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.jobs import redis_scripts
from screenshot_service.jobs.keys import JOBS
from screenshot_service.jobs.redis_jobs import RedisJobStore
from screenshot_service.jobs.runner import JobRunner
from screenshot_service.state.errors import StateUnavailable
from tests.conftest import answered_by, wait_for
from tests.jobs_helpers import JobsApp, settings_for, start_app
from tests.test_jobs_redis import a_job

if TYPE_CHECKING:
    from tests.conftest import TestSite
    from tests.redis_server import RedisTestServer

BOUND = 30.0  # seconds any awaited condition may take on a busy machine


# -- a page that answers when the test says so ------------------------------------------------------
@dataclass
class Gate:
    url: str
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: int = 0  # requests the browser made for it


@dataclass
class GateSite:
    port: int = 0
    gates: dict[str, Gate] = field(default_factory=dict)

    def gate(self, name: str) -> Gate:
        self.gates[name] = Gate(f"http://127.0.0.1:{self.port}/gate/{name}")
        return self.gates[name]


@pytest.fixture
async def gate_site() -> AsyncIterator[GateSite]:
    site = GateSite()

    async def handle(request: web.Request) -> web.Response:
        gate = site.gates[request.match_info["name"]]
        gate.arrived += 1
        await gate.opened.wait()
        return web.Response(text="<div style='width:100%;height:100vh;background:rgb(0,128,0)'></div>",
                            content_type="text/html")  # fmt: skip

    app = web.Application()
    app.router.add_get("/gate/{name}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    site.port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield site
    finally:
        for gate in site.gates.values():
            gate.opened.set()
        await runner.cleanup()


@pytest.fixture
async def gate_pool(make_pool: Callable[..., Awaitable[BrowserPool]], test_site: TestSite,
                    gate_site: GateSite) -> BrowserPool:  # fmt: skip
    """A Chromium pool of the test's own whose egress lets the gate site through."""
    return await make_pool(allow=[f"127.0.0.1:{test_site.port}", f"127.0.0.1:{gate_site.port}"],
                           pool_size=2, max_queue=8)  # fmt: skip


def _settings(root: Path, site: TestSite, gates: GateSite, **sections: Any) -> Any:
    egress = {"allow": [f"127.0.0.1:{site.port}", f"127.0.0.1:{gates.port}"]}
    return settings_for(root, site, egress=egress, **sections)


async def _submit(svc: JobsApp, url: str) -> str:
    response = await svc.client.post("/v1/jobs", json={"url": url, "width": 320, "height": 240}, headers=svc.auth())
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def _usage(svc: JobsApp) -> int:
    response = await svc.client.get("/v1/usage", headers=svc.auth())
    assert response.status == 200, await response.text()
    return int((await response.json())["quota"]["used"])


def _runner(svc: JobsApp) -> JobRunner:
    return svc.app[JOBS].runner


async def _failed_steps(runner: JobRunner, step: str, before: int) -> None:
    assert await wait_for(lambda: runner.store_failures[step] > before, BOUND), f"no {step} failed: {runner.store_failures}"


# -- Redis stalls ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _frozen(server: RedisTestServer) -> Any:
    """redis-server SIGSTOPped: connections stay open and nothing answers, until SIGCONT."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


async def test_three_redis_stalls_while_a_job_heartbeats_and_stores_its_result_cost_it_no_run(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, gate_site: GateSite, gate_pool: BrowserPool,
    redis_server: RedisTestServer,
) -> None:  # fmt: skip
    redis_server.start()
    redis_server.flush()
    # Two workers: while Redis is frozen for longer than the lease, this runner's free worker
    # claims again as soon as it is back, and may get its own job (a re-claim must count no run).
    settings = _settings(tmp_path / "svc", test_site, gate_site, jobs={"workers": 2},
                         state={"backend": "redis", "redis": {"url": redis_server.url}})  # fmt: skip
    svc = await start_app(aiohttp_client, settings, test_site, gate_pool, tuning={"lease_seconds": 1.5})
    runner = _runner(svc)
    gate = gate_site.gate("redis")
    job_id = await _submit(svc, gate.url)
    assert await wait_for(lambda: gate.arrived == 1, BOUND)  # claimed, capturing

    for _ in range(2):  # stalls 1 and 2: the heartbeat fails (each stall outlasts the 1.5 s lease)
        before = runner.store_failures["renew"]
        with _frozen(redis_server):
            await _failed_steps(runner, "renew", before)
    before = runner.store_failures["finish"]
    with _frozen(redis_server):  # stall 3: the capture ends and storing its result fails
        gate.opened.set()
        await _failed_steps(runner, "finish", before)

    done = await svc.wait_done(job_id)
    assert done["status"] == "succeeded", done
    stored = await svc.app[JOBS].store.get(job_id)
    assert stored is not None and stored.runs == 1, "a store stall was counted as a capture run"
    assert gate.arrived == 1  # captured once
    assert await _usage(svc) == 1 and await svc.credits_used() == 1  # charged once
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        states = [await client.hget(name, "s") async for name in client.scan_iter("screenshot:res:*")]
    finally:
        await client.aclose()
    assert states == ["committed"]
    assert await wait_for(lambda: not runner._tasks, BOUND)  # acked and done: nothing left running


async def test_a_claim_whose_answer_a_redis_stall_lost_is_repeated_not_doubled(redis_server: RedisTestServer) -> None:
    redis_server.start()
    redis_server.flush()
    store = RedisJobStore(redis_server.url)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        first, second = a_job(), a_job()
        for job in (first, second):
            await store.create(job, max_active=10, ttl=3600)
        await raw.script_load(redis_scripts.CLAIM)  # or the stalled EVALSHA could only answer NOSCRIPT
        candidate = await store.peek_claim("token-1")  # a claim's first step, a read, answered
        assert candidate is not None
        with _frozen(redis_server), pytest.raises(StateUnavailable):
            await store.take_claim("w1", 30, "token-1", candidate)  # sent, then no answer: the client gives up
        # Redis runs the claim once it runs again: the job is w1's, though w1 never heard.
        async def owner() -> str | None:
            return await raw.hget(store.job_name(first.id), "owner")  # type: ignore[no-any-return]
        deadline = asyncio.get_running_loop().time() + BOUND
        while await owner() != "w1":
            assert asyncio.get_running_loop().time() < deadline, "the lost claim never landed"
            await asyncio.sleep(0.05)

        again = await store.claim("w1", 30, "token-1")  # the runner repeats the claim that failed
        assert again is not None and again.id == first.id and again.runs == 1
        untouched = await store.get(second.id)
        assert untouched is not None and untouched.status == "queued" and untouched.runs == 0
        nxt = await store.claim("w1", 30, "token-2")
        assert nxt is not None and nxt.id == second.id and nxt.runs == 1
    finally:
        await raw.aclose()
        await store.close()


# -- a write-locked SQLite file ------------------------------------------------------------------------------
async def test_a_write_locked_sqlite_file_while_a_job_stores_its_result_costs_it_no_run(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, gate_site: GateSite, gate_pool: BrowserPool
) -> None:
    root = tmp_path / "svc"
    settings = _settings(root, test_site, gate_site, jobs={"workers": 1})
    svc = await start_app(aiohttp_client, settings, test_site, gate_pool, tuning={"lease_seconds": 1.5})
    runner = _runner(svc)
    gate = gate_site.gate("sqlite")
    job_id = await _submit(svc, gate.url)
    assert await wait_for(lambda: gate.arrived == 1, BOUND)

    # Another connection holds the write lock: every write waits out its busy timeout and fails.
    locker = sqlite3.connect(root / "state.sqlite3", timeout=BOUND, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(locker.execute, "BEGIN IMMEDIATE")
        before = runner.store_failures["finish"]
        gate.opened.set()
        await _failed_steps(runner, "finish", before)
    finally:
        await asyncio.to_thread(locker.execute, "ROLLBACK")
        locker.close()

    done = await svc.wait_done(job_id)
    assert done["status"] == "succeeded", done
    stored = await svc.app[JOBS].store.get(job_id)
    assert stored is not None and stored.runs == 1, "a locked file was counted as a capture run"
    assert gate.arrived == 1
    assert await _usage(svc) == 1 and await svc.credits_used() == 1


# -- shutdown ---------------------------------------------------------------------------------------------------
# Two drains in a row (8 s) are past the bound (DRAIN + DRAIN_SLACK = 7 s); one drain leaves the
# in-process close 3 s (it takes well under 1 s under load).
DRAIN, DRAIN_SLACK = 4.0, 3.0


@pytest.mark.slow
async def test_shutdown_takes_drain_seconds_once_and_gives_the_cut_job_back(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, gate_site: GateSite, gate_pool: BrowserPool
) -> None:
    root = tmp_path / "svc"
    settings = _settings(root, test_site, gate_site, jobs={"workers": 1}, server={"drain_seconds": DRAIN})
    first = await start_app(aiohttp_client, settings, test_site, gate_pool)
    gate = gate_site.gate("drain")  # the capture would take longer than the drain: it is never opened in time
    job_id = await _submit(first, gate.url)
    assert await wait_for(lambda: gate.arrived == 1, BOUND)

    # on_shutdown (the sync drain), then cleanup (the job runner): a deadline guarantee with
    # generous slack, not a timing — one drain, never two in a row.
    await answered_by(first.client.close(), DRAIN, DRAIN_SLACK)

    with sqlite3.connect(root / "state.sqlite3") as db:
        status, owner, runs = db.execute("SELECT status, owner, runs FROM jobs WHERE id = ?", (job_id,)).fetchone()
        reservation = db.execute("SELECT state FROM quota_reservations").fetchall()
    assert (status, owner, runs) == ("queued", None, 0)  # given back, and the cut run not counted
    assert reservation == [("reserved",)]  # neither charged nor refunded yet

    gate.opened.set()
    second = await start_app(aiohttp_client, settings, test_site, gate_pool, key=(first.record, first.key))
    done = await second.wait_done(job_id)
    assert done["status"] == "succeeded", done
    assert (await second.app[JOBS].store.get(job_id)).runs == 1  # type: ignore[union-attr]
    assert gate.arrived == 2
    assert await _usage(second) == 1 and await second.credits_used() == 1


# -- Overloaded: retried, within a bound ----------------------------------------------------------------------
async def test_a_job_that_only_ever_meets_a_full_pool_fails_overloaded_after_its_bounded_retries(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, make_pool: Callable[..., Awaitable[BrowserPool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from screenshot_service.jobs import capture_retries

    monkeypatch.setattr(capture_retries, "OVERLOADED_PAUSE", 0.001)  # the count, not the pause, is the bound here
    pool = await make_pool(pool_size=1, max_queue=0)  # jobs share the sync lane; no queue: full is 503 at once
    svc = await start_app(aiohttp_client, settings_for(tmp_path / "svc", test_site, jobs={"workers": 1}),
                          test_site, pool)  # fmt: skip
    async with pool.lease():  # the only slot stays taken for as long as the job can see
        created = await svc.submit_ok("/paint", width=320, height=240)
        done = await svc.wait_done(created["id"])
        assert pool.admission.in_use["sync"] == 1  # still full: the job gave up, the pool did not free up
    assert done["status"] == "failed" and done["error"]["code"] == "overloaded", done
    assert await _usage(svc) == 0 and await svc.credits_used() == 0  # refunded
