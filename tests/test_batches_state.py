"""The batch contracts on every backend: SQLite, one redis-server, a three-primary Redis Cluster.

``reserve_credits`` takes every credit of a batch or none, atomically even against
concurrent batches; the batch store creates a batch with its items at once, cancels
its queued items at once, and hands its webhook to exactly one item's worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from screenshot_service.jobs.batch_models import Batch, new_batch_id
from screenshot_service.jobs.models import Job, new_job_id, now_utc
from screenshot_service.jobs.redis_jobs import RedisJobStore
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.jobs.store import JobStore
from screenshot_service.state.base import StateStore
from screenshot_service.state.sqlite import SqliteStateStore
from tests.test_state_contract import redis_store

if TYPE_CHECKING:
    from tests.redis_cluster import RedisTestCluster
    from tests.redis_server import RedisTestServer

pytest_plugins = ["tests.redis_server", "tests.redis_cluster"]

PERIOD = "2026-03"
BACKENDS = ["sqlite", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    built: StateStore = SqliteStateStore(tmp_path / "state.sqlite3") if request.param == "sqlite" else redis_store(request)
    yield built
    await built.close()


@pytest.fixture(params=BACKENDS)
async def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
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


# -- reserve_credits ---------------------------------------------------------------------------------
async def test_a_batch_of_credits_is_taken_whole_or_not_at_all(state: StateStore) -> None:
    taken = await state.reserve_credits("key_b", PERIOD, 5, 3, 60)
    assert taken.reservations is not None and len({r.id for r in taken.reservations}) == 3 and taken.used == 3
    refused = await state.reserve_credits("key_b", PERIOD, 5, 3, 60)
    assert refused.reservations is None and refused.used == 3
    assert await state.credits_used("key_b", PERIOD) == 3  # nothing of the refused batch was taken
    rest = await state.reserve_credits("key_b", PERIOD, 5, 2, 60)
    assert rest.reservations is not None and rest.used == 5
    # Each reservation of a batch settles on its own, exactly once.
    first, second = taken.reservations[0], taken.reservations[1]
    assert await state.commit_credit(first)
    assert await state.refund_credit(second) and not await state.refund_credit(second)
    assert await state.credits_used("key_b", PERIOD) == 4
    assert (await state.reserve_credit("key_b", PERIOD, 5, 60)).reservation is not None
    assert await state.credits_used("key_b", PERIOD) == 5


async def test_concurrent_batches_never_overdraw_the_quota(state: StateStore) -> None:
    answers = await asyncio.gather(*(state.reserve_credits("key_c", PERIOD, 10, 3, 60) for _ in range(8)))
    granted = [a for a in answers if a.reservations is not None]
    assert len(granted) == 3
    assert await state.credits_used("key_c", PERIOD) == 9


async def test_unsettled_batch_credits_are_reclaimed_when_their_lease_runs_out(state: StateStore) -> None:
    taken = await state.reserve_credits("key_d", PERIOD, 10, 4, 0.001)
    assert taken.reservations is not None
    await asyncio.sleep(0.01)  # the lease is 1 ms: past it, not ordering two events
    assert await state.reclaim_credits() == 4
    assert await state.credits_used("key_d", PERIOD) == 0


# -- the batch store ---------------------------------------------------------------------------------
def a_batch(count: int, key_id: str = "key_a", *, idem: str | None = None, webhook: bool = True) -> tuple[Batch, list[Job]]:
    created = now_utc()
    batch = Batch(id=new_batch_id(), key_id=key_id, job_ids=tuple(new_job_id() for _ in range(count)),
                  base_url="http://h", created_at=created, webhook_url="http://hook.example/" if webhook else None,
                  idempotency_key=idem, fingerprint="f1", webhook_status="pending" if webhook else None)  # fmt: skip
    items = [Job(id=job_id, key_id=key_id, status="queued", options={"url": "http://example.com/"}, webhook_url=None,
                 base_url="http://h", created_at=created, reservation_id="res_" + job_id, period=PERIOD,
                 batch_id=batch.id) for job_id in batch.job_ids]  # fmt: skip
    return batch, items


async def finish(jobs: JobStore, job: Job, owner: str) -> None:
    assert await jobs.finish(job.with_changes(status="succeeded", finished_at=now_utc(), result={"n": 1}), owner, 3600)


async def test_a_batch_and_its_items_are_created_at_once_or_not_at_all(jobs: JobStore) -> None:
    batch, items = a_batch(3)
    alone = items[0].with_changes(id=new_job_id(), batch_id=None)
    assert (await jobs.create(alone, max_active=4, ttl=3600)).outcome == "created"
    full = await jobs.batches.create(batch, items, max_active=3, ttl=3600)
    assert full.outcome == "full" and full.active == 1
    assert await jobs.queued() == 1 and await jobs.batches.get(batch.id) is None
    assert [await jobs.get(job.id) for job in items] == [None, None, None]
    assert (await jobs.batches.create(batch, items, max_active=4, ttl=3600)).outcome == "created"
    assert await jobs.queued() == 4
    stored = await jobs.batches.get(batch.id)
    assert stored is not None and stored.job_ids == batch.job_ids
    assert [job.id if job else None for job in await jobs.batches.items(stored)] == list(batch.job_ids)
    assert stored.to_json(await jobs.batches.items(stored))["status"] == "queued"


async def test_an_idempotency_key_names_the_first_batch(jobs: JobStore) -> None:
    first, items = a_batch(2, idem="k1")
    assert (await jobs.batches.create(first, items, max_active=10, ttl=3600)).outcome == "created"
    second, more = a_batch(2, idem="k1")
    again = await jobs.batches.create(second, more, max_active=10, ttl=3600)
    assert again.outcome == "existing" and again.batch is not None and again.batch.id == first.id
    assert await jobs.queued() == 2
    found = await jobs.batches.by_idempotency_key("key_a", "k1")
    assert found is not None and found.id == first.id


async def test_cancel_takes_only_the_queued_items_of_this_keys_batch(jobs: JobStore) -> None:
    batch, items = a_batch(3)
    await jobs.batches.create(batch, items, max_active=10, ttl=3600)
    running = await jobs.claim("w1", 30)
    assert running is not None and running.id == items[0].id
    assert await jobs.batches.cancel(batch.id, "key_other", now_utc()) is None
    canceled = await jobs.batches.cancel(batch.id, "key_a", now_utc())
    assert canceled is not None and sorted(job.id for job in canceled) == sorted(batch.job_ids[1:])
    assert all(job.reservation_id == "res_" + job.id for job in canceled)  # what the caller refunds
    assert await jobs.batches.cancel(batch.id, "key_a", now_utc()) == []  # again: nothing more
    statuses = [job.status if job else None for job in await jobs.batches.items(batch)]
    assert statuses == ["running", "canceled", "canceled"]


async def test_the_webhook_goes_to_exactly_one_item_once_every_item_ended(jobs: JobStore) -> None:
    batch, items = a_batch(3)
    await jobs.batches.create(batch, items, max_active=10, ttl=3600)
    claimed = [await jobs.claim(f"w{n}", 30) for n in range(3)]
    assert all(job is not None for job in claimed)
    await finish(jobs, items[0], "w0")
    assert await jobs.batches.claim_webhook(batch.id, items[0].id) is None  # two items still open
    await jobs.batches.cancel(batch.id, "key_a", now_utc())  # nothing queued: cancels nothing
    await finish(jobs, items[1], "w1")
    await finish(jobs, items[2], "w2")
    # Every item's worker asks at once: one wins, and only it may ask again or record the outcome.
    answers = await asyncio.gather(*(jobs.batches.claim_webhook(batch.id, job.id) for job in items))
    winners = [job.id for job, answer in zip(items, answers, strict=True) if answer is not None]
    assert len(winners) == 1
    winner = winners[0]
    loser = next(job.id for job in items if job.id != winner)
    assert await jobs.batches.claim_webhook(batch.id, winner) is not None  # its worker died and came back
    await jobs.batches.update_webhook(batch.id, loser, "delivered", 1)
    stored = await jobs.batches.get(batch.id)
    assert stored is not None and stored.webhook_status == "pending"
    await jobs.batches.update_webhook(batch.id, winner, "delivered", 1)
    stored = await jobs.batches.get(batch.id)
    assert stored is not None and (stored.webhook_status, stored.webhook_attempts) == ("delivered", 1)
    assert await jobs.batches.claim_webhook(batch.id, winner) is None  # sent: never again


async def test_a_batch_without_a_webhook_is_never_claimed(jobs: JobStore) -> None:
    batch, items = a_batch(1, webhook=False)
    await jobs.batches.create(batch, items, max_active=10, ttl=3600)
    assert await jobs.batches.cancel(batch.id, "key_a", now_utc())
    assert await jobs.batches.claim_webhook(batch.id, items[0].id) is None
