"""Queue depth and queue wait in /metrics (Step 17, point 6), for the sync lane and the jobs lane.

Sync captures fill the session's shared pool (2 slots) with loads the test holds back
(/pending-image behind a gate), so which capture waits and when it ends is the test's choice.
Jobs are queued on an instance that runs none, and a second instance on the same store runs
them: the depth is the shared queue's, the wait is observed where a job is claimed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.browser.pool import SYNC, BrowserPool
from screenshot_service.jobs.models import Job, new_job_id, now_utc
from screenshot_service.jobs.redis_jobs import RedisJobStore
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.jobs.store import JobStore
from tests import site
from tests.conftest import Service, wait_for
from tests.conftest import TestSite as Site
from tests.jobs_helpers import JobsApp, settings_for, start_app
from tests.test_metrics import Samples, parse, value

BOUND = 30.0  # seconds a condition may take to hold on a loaded machine
_tokens = itertools.count()


@pytest.fixture
def gate() -> Iterator[Callable[[], str]]:
    """gate() -> token: a /pending-image load held until ``site.LATE_GATES[token].set()``; all open after."""
    made: list[str] = []

    def new() -> str:
        token = f"queue{next(_tokens)}"
        site.LATE_GATES[token] = asyncio.Event()
        made.append(token)
        return token

    yield new
    for token in made:
        site.LATE_GATES.pop(token).set()


def a_job() -> Job:
    return Job(id=new_job_id(), key_id="key_a", status="queued", options={"url": "http://example.com/"},
               webhook_url=None, base_url="http://h", created_at=now_utc(), reservation_id="res_" + new_job_id(),
               period="2026-01")  # fmt: skip


async def scrape(client: Any) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    return parse(await response.text())


def waits(samples: Samples, lane: str) -> float:
    count = value(samples, "screenshot_queue_wait_seconds_count", lane=lane)
    assert count is not None, f"no queue wait histogram for lane {lane}"
    assert value(samples, "screenshot_queue_wait_seconds_bucket", lane=lane, le="+Inf") == count
    return count


def depth(samples: Samples, lane: str) -> float | None:
    return value(samples, "screenshot_queue_depth", lane=lane)


async def test_sync_queue_depth_while_waiting_and_every_wait_observed(
    shared_pool: BrowserPool, make_service: Callable[..., Awaitable[Service]], gate: Callable[[], str]
) -> None:
    svc = await make_service()
    before = await scrape(svc.client)
    assert depth(before, "sync") == 0
    tokens = [gate() for _ in range(4)]
    shots = [asyncio.ensure_future(svc.shot(f"/pending-image?token={token}")) for token in tokens]
    # Two captures hold both slots (their waits, for nothing, are observed); the other two wait.
    assert await wait_for(lambda: shared_pool.admission.in_use[SYNC] == 2 and shared_pool.admission.waiting == 2,
                          BOUND), shared_pool.stats()  # fmt: skip
    waiting: Samples = {}

    async def two_wait_and_two_waited() -> bool:
        waiting.update(await scrape(svc.client))
        return depth(waiting, "sync") == 2 and waits(waiting, "sync") == waits(before, "sync") + 2

    assert await wait_for(two_wait_and_two_waited, BOUND), (depth(waiting, "sync"), waits(waiting, "sync"))

    for token in tokens:
        site.LATE_GATES[token].set()
    answers = await asyncio.wait_for(asyncio.gather(*shots), BOUND)
    assert [response.status for response in answers] == [200] * 4
    after = await scrape(svc.client)
    assert depth(after, "sync") == 0
    assert waits(after, "sync") == waits(before, "sync") + 4
    # The two that queued waited for a capture to end, the others for nothing.
    waited = value(after, "screenshot_queue_wait_seconds_sum", lane="sync")
    assert waited is not None and waited > (value(before, "screenshot_queue_wait_seconds_sum", lane="sync") or 0)


async def test_a_sync_wait_that_ends_without_a_slot_is_observed_too(
    shared_pool: BrowserPool, make_service: Callable[..., Awaitable[Service]], gate: Callable[[], str]
) -> None:
    svc = await make_service()
    tokens = [gate() for _ in range(2)]
    start = waits(await scrape(svc.client), "sync")  # before the holders: their waits may be observed at once
    holders = [asyncio.ensure_future(svc.shot(f"/pending-image?token={token}")) for token in tokens]
    assert await wait_for(lambda: shared_pool.admission.in_use[SYNC] == 2, BOUND), shared_pool.stats()
    before: Samples = {}

    async def both_slots_taken() -> bool:
        before.update(await scrape(svc.client))
        return waits(before, "sync") == start + 2

    assert await wait_for(both_slots_taken, BOUND)
    # A short deadline: this one gives up waiting for a slot (504) and its wait still counts.
    waiter = await svc.shot("/paint", timeout=1)
    assert waiter.status == 504, await waiter.text()
    after = await scrape(svc.client)
    assert waits(after, "sync") == waits(before, "sync") + 1
    assert depth(after, "sync") == 0
    for token in tokens:
        site.LATE_GATES[token].set()
    assert [r.status for r in await asyncio.wait_for(asyncio.gather(*holders), BOUND)] == [200, 200]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_jobs_queue_depth_from_the_store_and_the_wait_at_the_claim(
    backend: str, request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path, test_site: Site,
    shared_pool: BrowserPool,
) -> None:  # fmt: skip
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        server.start()
        server.flush()
        state: dict[str, Any] = {"backend": "redis", "redis": {"url": server.url}}
    else:
        state = {"backend": "sqlite", "sqlite": {"path": str(tmp_path / "shared.sqlite3")}}

    async def instance(name: str, workers: int, key: Any = None) -> JobsApp:
        settings = settings_for(tmp_path / name, test_site, jobs={"workers": workers}, state=state,
                                storage={"local": {"path": str(tmp_path / "captures")}})  # fmt: skip
        return await start_app(aiohttp_client, settings, test_site, shared_pool, key=key)

    accepting = await instance("a", workers=0)  # accepts jobs, runs none
    assert depth(await scrape(accepting.client), "jobs") == 0
    ids = [(await accepting.submit_ok("/paint", width=320, height=240))["id"] for _ in range(3)]
    queued = await scrape(accepting.client)
    assert depth(queued, "jobs") == 3
    assert waits(queued, "jobs") == 0  # nobody claimed them

    running = await instance("b", workers=1, key=(accepting.record, accepting.key))
    done = [await running.wait_done(job_id) for job_id in ids]
    assert [job["status"] for job in done] == ["succeeded"] * 3
    assert depth(await scrape(accepting.client), "jobs") == 0  # the shared queue, seen from either
    ran = await scrape(running.client)
    assert depth(ran, "jobs") == 0
    assert waits(ran, "jobs") == 3  # one wait per job, observed where it was claimed
    assert waits(await scrape(accepting.client), "jobs") == 0


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_the_store_counts_only_jobs_no_worker_holds(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        server.start()
        server.flush()
        store: JobStore = RedisJobStore(server.url)
    else:
        store = SqliteJobStore(tmp_path / "state.sqlite3")
    try:
        jobs = [a_job() for _ in range(3)]
        for job in jobs:
            assert (await store.create(job, max_active=10, ttl=3600)).outcome == "created"
        assert await store.queued() == 3
        claimed = await store.claim("w1", 30)
        assert claimed is not None and await store.queued() == 2
        await store.release(claimed.id, "w1")  # given back: waiting again
        assert await store.queued() == 3
        again = await store.claim("w1", 30)
        assert again is not None
        await store.ack(again.id, "w1")
        assert await store.queued() == 2
    finally:
        await store.close()


async def test_a_frozen_redis_keeps_the_last_jobs_depth_and_the_scrape_answers(
    request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path, test_site: Site,
    shared_pool: BrowserPool, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    server = request.getfixturevalue("redis_server")
    server.start()
    server.flush()
    settings = settings_for(tmp_path / "a", test_site, jobs={"workers": 0},
                            state={"backend": "redis", "redis": {"url": server.url}})  # fmt: skip
    accepting = await start_app(aiohttp_client, settings, test_site, shared_pool)
    for _ in range(2):
        await accepting.submit_ok("/paint")
    assert depth(await scrape(accepting.client), "jobs") == 2
    server.freeze()  # SIGSTOP: the store neither answers nor refuses
    try:
        frozen = await asyncio.wait_for(scrape(accepting.client), BOUND)
    finally:
        server.thaw()
    assert depth(frozen, "jobs") == 2
    assert "reading the jobs queue's depth failed" in caplog.text
    await accepting.submit_ok("/paint")
    assert await wait_for(lambda: _depth_is(accepting, 3), BOUND)


async def _depth_is(app: JobsApp, expected: int) -> bool:
    return depth(await scrape(app.client), "jobs") == expected
