"""The job queue's contract on both stores, and Redis-only sharing between instances.

The contract tests drive a JobStore directly (no browser); the instance tests
run two apps on one real redis-server and the shared Chromium pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.jobs.models import Job, new_job_id, now_utc
from screenshot_service.jobs.redis_jobs import RedisJobStore
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.jobs.store import JobStore
from tests import site
from tests.conftest import wait_for
from tests.jobs_helpers import JobsApp, settings_for, start_app

if TYPE_CHECKING:
    from tests.conftest import TestSite
    from tests.redis_cluster import RedisTestCluster
    from tests.redis_server import RedisTestServer

pytest_plugins = ["tests.redis_cluster"]


def a_job(key_id: str = "key_a", *, idem: str | None = None, fingerprint: str = "f1") -> Job:
    return Job(id=new_job_id(), key_id=key_id, status="queued", options={"url": "http://example.com/"},
               webhook_url=None, base_url="http://h", created_at=now_utc(), reservation_id="res_" + new_job_id(),
               period="2026-01", idempotency_key=idem, fingerprint=fingerprint)  # fmt: skip


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "sqlite":
        built: JobStore = SqliteJobStore(tmp_path / "state.sqlite3")
    elif request.param == "cluster":
        cluster: RedisTestCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        built = RedisJobStore(cluster.url, cluster=True)
    else:
        server: RedisTestServer = request.getfixturevalue("redis_server")
        server.start()
        server.flush()
        built = RedisJobStore(server.url)
    yield built
    await built.close()


# -- the JobStore contract ---------------------------------------------------------------------------
async def test_jobs_are_claimed_in_order_and_acked_once(store: JobStore) -> None:
    jobs = [a_job() for _ in range(3)]
    for job in jobs:
        assert (await store.create(job, max_active=10, ttl=3600)).outcome == "created"
    claimed = [await store.claim("w1", 30) for _ in range(3)]
    assert [c.id for c in claimed if c] == [job.id for job in jobs]  # FIFO
    assert all(c is not None and c.status == "running" and c.runs == 1 and c.started_at for c in claimed)
    assert await store.claim("w1", 30) is None
    first = claimed[0]
    assert first is not None
    assert not await store.finish(first.with_changes(status="succeeded"), "someone-else", 3600)
    assert await store.finish(first.with_changes(status="succeeded", finished_at=now_utc(),
                                                 result={"url": "u"}), "w1", 3600)  # fmt: skip
    stored = await store.get(first.id)
    assert stored is not None and stored.status == "succeeded" and stored.result == {"url": "u"}
    assert stored.options is None  # not kept once the job is done
    await store.ack(first.id, "w1")
    assert await store.claim("w2", 30) is None  # acked: gone from the queue, the record stays


async def test_a_released_job_is_first_in_line_and_not_counted_as_a_run(store: JobStore) -> None:
    jobs = [a_job() for _ in range(2)]
    for job in jobs:
        await store.create(job, max_active=10, ttl=3600)
    claimed = await store.claim("w1", 30)
    assert claimed is not None and claimed.id == jobs[0].id
    await store.release(claimed.id, "w1")
    back = await store.get(claimed.id)
    assert back is not None and back.status == "queued" and back.runs == 0 and back.started_at is None
    again = await store.claim("w2", 30)
    assert again is not None and again.id == jobs[0].id and again.runs == 1


async def test_a_lease_that_runs_out_hands_the_job_to_the_next_claim(store: JobStore) -> None:
    job = a_job()
    await store.create(job, max_active=10, ttl=3600)
    assert await store.claim("dead", 2) is not None  # a lease long enough to ask once while it holds
    assert await store.claim("alive", 30) is None  # leased: nobody else gets it
    claims: list[Job | None] = []

    async def lease_ran_out() -> bool:
        claims.append(await store.claim("alive", 30))
        return claims[-1] is not None

    assert await wait_for(lease_ran_out, 30), "the dead worker's lease never ran out"
    taken = claims[-1]
    assert taken is not None and taken.id == job.id and taken.runs == 2  # the dead run counts
    assert not await store.renew(job.id, "dead", 30)
    assert not await store.finish(taken.with_changes(status="failed"), "dead", 3600)
    assert await store.renew(job.id, "alive", 30)


async def test_idempotency_keys_and_max_active_are_checked_atomically(store: JobStore) -> None:
    first = a_job(idem="k1")
    assert (await store.create(first, max_active=2, ttl=3600)).outcome == "created"
    replay = await store.create(a_job(idem="k1", fingerprint="f2"), max_active=2, ttl=3600)
    assert replay.outcome == "existing" and replay.job is not None and replay.job.id == first.id
    assert replay.job.fingerprint == "f1"
    found = await store.by_idempotency_key("key_a", "k1")
    assert found is not None and found.id == first.id
    assert await store.by_idempotency_key("key_b", "k1") is None  # scoped per API key
    assert (await store.create(a_job(), max_active=2, ttl=3600)).outcome == "created"
    full = await store.create(a_job(), max_active=2, ttl=3600)
    assert full.outcome == "full" and full.active == 2
    assert (await store.create(a_job("key_b"), max_active=2, ttl=3600)).outcome == "created"  # per key


async def test_only_a_queued_job_is_canceled_and_it_stays_queued_for_settling(store: JobStore) -> None:
    running, queued = a_job(), a_job()
    await store.create(running, max_active=10, ttl=3600)
    await store.create(queued, max_active=10, ttl=3600)
    assert await store.claim("w", 30) is not None
    assert await store.cancel(queued.id, "key_other", now_utc()) is None  # not yours: unknown
    not_canceled = await store.cancel(running.id, "key_a", now_utc())
    assert not_canceled is not None and not_canceled.status == "running"
    canceled = await store.cancel(queued.id, "key_a", now_utc())
    assert canceled is not None and canceled.status == "canceled" and canceled.finished_at is not None
    settle = await store.claim("w", 30)  # a worker still sees it, to refund its credit
    assert settle is not None and settle.id == queued.id and settle.status == "canceled"
    full = await store.create(a_job(), max_active=2, ttl=3600)
    assert full.outcome == "created"  # a canceled job no longer counts against max_queued_jobs


async def test_redis_job_records_expire_with_the_retention(redis_server: RedisTestServer) -> None:
    redis_server.start()
    redis_server.flush()
    store = RedisJobStore(redis_server.url)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        job = a_job(idem="k")
        await store.create(job, max_active=10, ttl=7 * 86400)
        assert 7 * 86400 - 5 < await client.ttl(f"screenshot:jobs:job:{job.id}") <= 7 * 86400
        claimed = await store.claim("w", 30)
        assert claimed is not None
        await store.finish(claimed.with_changes(status="succeeded", finished_at=now_utc()), "w", 86400)
        for name in (f"screenshot:jobs:job:{job.id}", store.idem_name("key_a", "k")):
            assert 86400 - 5 < await client.ttl(name) <= 86400  # counted again from the finish
    finally:
        await client.aclose()
        await store.close()


# -- two instances, one redis-server -------------------------------------------------------------------
MakeInstance = Callable[..., Awaitable[JobsApp]]


@pytest.fixture
async def make_instance(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool,
    redis_server: RedisTestServer,
) -> MakeInstance:  # fmt: skip
    """Instances on one Redis and one capture directory (a shared volume, as S3 would be)."""
    redis_server.start()
    redis_server.flush()
    counter = 0

    async def make(*, workers: int, key: Any = None, drain_seconds: float | None = None) -> JobsApp:
        nonlocal counter
        counter += 1
        server = {} if drain_seconds is None else {"server": {"drain_seconds": drain_seconds}}
        settings = settings_for(
            tmp_path / f"instance{counter}", test_site, jobs={"workers": workers},
            state={"backend": "redis", "redis": {"url": redis_server.url}},
            storage={"local": {"path": str(tmp_path / "shared-captures")}}, **server,
        )  # fmt: skip
        return await start_app(aiohttp_client, settings, test_site, shared_pool, key=key)

    return make


async def test_two_instances_share_one_queue(make_instance: MakeInstance) -> None:
    a = await make_instance(workers=0)  # accepts and answers, runs nothing
    b = await make_instance(workers=2, key=(a.record, a.key))
    ids = [(await a.submit_ok("/paint", width=320, height=240))["id"] for _ in range(4)]
    on_b = [await b.wait_done(job_id) for job_id in ids]  # submitted on A, run by B, polled on B
    assert [job["status"] for job in on_b] == ["succeeded"] * 4
    for job in on_b:
        assert await a.job(job["id"]) == job  # and A answers the same
        image = await a.client.get("/" + job["result"]["url"].split("/", 3)[3])
        assert image.status == 200
    assert await a.credits_used() == 4 and await b.credits_used() == 4

    # Cancel on A what was submitted on B; replay on B what was submitted on A.
    await b.client.close()  # nobody runs jobs now: the next one stays queued
    c = await make_instance(workers=0, key=(a.record, a.key))
    queued = await c.submit_ok("/paint")
    response = await a.client.delete(f"/v1/jobs/{queued['id']}", headers=a.auth())
    assert response.status == 200 and (await response.json())["status"] == "canceled"
    first = await a.submit("/paint", headers={"Idempotency-Key": "shared"})
    again = await c.submit("/paint", headers={"Idempotency-Key": "shared"})
    assert first.status == 202 and again.status == 200
    assert (await first.json())["id"] == (await again.json())["id"]
    assert await a.credits_used() == 5  # 4 run + 1 waiting; the canceled one was refunded


async def test_a_graceful_stop_on_redis_gives_running_jobs_back_and_the_next_instance_runs_them(
    make_instance: MakeInstance, redis_server: RedisTestServer
) -> None:
    first = await make_instance(workers=2, drain_seconds=0)
    with site.held_back() as token:  # the jobs' page loads only once the first instance is gone
        ids = [(await first.submit_ok(f"/slow?gate={token}"))["id"] for _ in range(5)]

        async def one_running() -> bool:
            return any([(await first.job(job_id))["status"] == "running" for job_id in ids])

        assert await wait_for(one_running, 30)
        await first.client.close()  # drain_seconds=0: the running captures are cut short
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        records = [await client.hgetall(f"screenshot:jobs:job:{job_id}") for job_id in ids]
        leased = await client.zcard("screenshot:jobs:leases")
    finally:
        await client.aclose()
    # Given back, not failed, no lease left behind, and the cut runs not counted.
    assert [(r["status"], r.get("owner"), r.get("runs", "0")) for r in records] == [("queued", None, "0")] * 5
    assert leased == 0

    second = await make_instance(workers=2, key=(first.record, first.key))
    finished = [await second.wait_done(job_id) for job_id in ids]
    assert [job["status"] for job in finished] == ["succeeded"] * 5
    assert await second.credits_used() == 5


async def test_a_dead_instances_job_is_taken_over_when_its_lease_runs_out(
    make_instance: MakeInstance, redis_server: RedisTestServer
) -> None:
    a = await make_instance(workers=0)
    created = await a.submit_ok("/paint")
    ghost = RedisJobStore(redis_server.url)  # an instance that claims the job and then dies
    try:
        claimed = await ghost.claim("dead-instance", 1.0)
        assert claimed is not None and claimed.id == created["id"]
    finally:
        await ghost.close()
    assert (await a.job(created["id"]))["status"] == "running"
    b = await make_instance(workers=1, key=(a.record, a.key))
    done = await b.wait_done(created["id"])
    assert done["status"] == "succeeded"
    assert await b.credits_used() == 1
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        reservations = [await client.hget(name, "s") async for name in client.scan_iter("screenshot:res:*")]
    finally:
        await client.aclose()
    assert reservations == ["committed"]


async def test_a_redis_job_that_expired_while_queued_no_longer_counts(redis_server: RedisTestServer) -> None:
    redis_server.start()
    redis_server.flush()
    store = RedisJobStore(redis_server.url)
    try:
        stale = a_job()
        await store.create(stale, max_active=1, ttl=3600)
        assert (await store.create(a_job(), max_active=1, ttl=3600)).outcome == "full"
        await store.client.delete(f"screenshot:jobs:job:{stale.id}")  # as if its TTL ran out
        assert (await store.create(a_job(), max_active=1, ttl=3600)).outcome == "created"
        claimed = await store.claim("w", 30)
        assert claimed is not None and claimed.id != stale.id  # the stale id is skipped, not run
    finally:
        await store.close()
