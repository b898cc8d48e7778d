"""One contract, every backend: SQLite and Redis stores, local and Redis limiters and gates.

The same assertions run against the embedded implementations and the shared
(Redis) ones, so a deployment can switch ``state.backend`` without any change
in behaviour.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from screenshot_service.config import PlanConfig
from screenshot_service.limits.concurrency import ConcurrencyGate, LocalConcurrencyGate
from screenshot_service.limits.rate import LocalRateLimiter, RateDecision, RateLimiter
from screenshot_service.state.base import KeyRecord, Reservation, StateStore
from screenshot_service.state.redis import RedisConcurrencyGate, RedisRateLimiter, RedisStateStore
from screenshot_service.state.sqlite import SqliteStateStore
from tests.conftest import wait_for

if TYPE_CHECKING:
    from tests.redis_cluster import RedisTestCluster
    from tests.redis_server import RedisTestServer

pytest_plugins = ["tests.redis_server", "tests.redis_cluster"]

PERIOD = "2026-03"
LEASE = 60.0  # seconds: longer than any test here


def redis_store(request: pytest.FixtureRequest) -> RedisStateStore:
    """A store on the emptied single server ("redis") or three-primary cluster ("cluster")."""
    if request.param == "cluster":
        cluster: RedisTestCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return RedisStateStore(cluster.url, cluster=True)
    server: RedisTestServer = request.getfixturevalue("redis_server")
    server.start()
    server.flush()
    return RedisStateStore(server.url)


async def reserve(store: StateStore, key_id: str, period: str, limit: int, lease: float = LEASE) -> Reservation | None:
    return (await store.reserve_credit(key_id, period, limit, lease)).reservation
FREE = PlanConfig(requests_per_second=1, burst=1)
BURSTY = PlanConfig(requests_per_second=1, burst=3)


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "sqlite":
        sqlite = SqliteStateStore(tmp_path / "state.sqlite3")
        yield sqlite
        await sqlite.close()
    else:
        redis = redis_store(request)
        yield redis
        await redis.close()


def key_record(n: int, *, created_at: datetime | None = None) -> KeyRecord:
    return KeyRecord(
        id=f"key_{n:04d}",
        name=f"name {n}",
        plan="pro" if n % 2 else "free",
        created_at=created_at or datetime(2026, 3, 1, 12, 0, n, 123456, tzinfo=UTC),
        revoked=False,
        webhook_secret=f"whsec_{n}",
        signing_secret=f"sign_{n}",
    )


# keys ------------------------------------------------------------------------------
async def test_add_lookup_list_count_keys(store: StateStore) -> None:
    assert await store.count_keys() == 0
    assert await store.list_keys() == []
    base = datetime(2026, 3, 1, tzinfo=UTC)
    records = [key_record(n, created_at=base + timedelta(seconds=10 - n)) for n in range(3)]
    for n, record in enumerate(records):
        await store.add_key(record, f"hash{n}")
    assert await store.count_keys() == 3
    assert await store.key_by_hash("hash1") == records[1]
    assert await store.key_by_hash("nope") is None
    assert await store.list_keys() == sorted(records, key=lambda r: r.created_at)


async def test_key_by_id(store: StateStore) -> None:
    record = key_record(3)
    await store.add_key(record, "hash3")
    assert await store.key_by_id(record.id) == record
    assert await store.key_by_id("key_missing") is None
    await store.revoke_key(record.id)
    found = await store.key_by_id(record.id)
    assert found is not None and found.revoked and found.signing_secret == "sign_3"


async def test_keys_stored_before_signed_links_get_one_signing_secret(tmp_path: Path, redis_server: RedisTestServer) -> None:
    """An upgrade: keys written without a signing secret get their own on first read, once."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # the api_keys table as it was before signed links
    old.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
                " plan TEXT NOT NULL, created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,"
                " webhook_secret TEXT NOT NULL)")
    for n in (1, 2):
        old.execute("INSERT INTO api_keys VALUES (?, ?, 'old', 'free', '2026-01-01T00:00:00+00:00', 0, 'whsec_o')",
                    (f"key_old{n}", f"hash{n}"))
    old.commit()
    old.close()
    redis_server.start()
    redis_server.flush()
    redis = RedisStateStore(redis_server.url)
    for n in (1, 2):
        await redis.client.hset(f"screenshot:key:key_old{n}", mapping={
            "id": f"key_old{n}", "key_hash": f"hash{n}", "name": "old", "plan": "free",
            "created_at": "2026-01-01T00:00:00+00:00", "revoked": "0", "webhook_secret": "whsec_o"})
        await redis.client.hset("screenshot:keyhash", f"hash{n}", f"key_old{n}")
        await redis.client.zadd("screenshot:keys", {f"key_old{n}": n})
    try:
        for opened in (SqliteStateStore(path), redis):
            first = {r.id: r.signing_secret for r in await opened.list_keys()}
            assert len(set(first.values())) == 2 and all(s.startswith("sign_") for s in first.values())
            again = await opened.key_by_hash("hash1")
            assert again is not None and again.signing_secret == first["key_old1"]
            by_id = await opened.key_by_id("key_old2")
            assert by_id is not None and by_id.signing_secret == first["key_old2"]
            if isinstance(opened, SqliteStateStore):
                await opened.close()
                reopened = SqliteStateStore(path)  # kept across restarts, not made anew
                assert {r.id: r.signing_secret for r in await reopened.list_keys()} == first
                await reopened.close()
    finally:
        await redis.close()


async def test_revoke_key(store: StateStore) -> None:
    record = key_record(7)
    await store.add_key(record, "hash7")
    assert await store.revoke_key(record.id) is True
    found = await store.key_by_hash("hash7")
    assert found is not None and found.revoked and found.id == record.id
    assert (await store.list_keys())[0].revoked
    assert await store.revoke_key("key_missing") is False
    assert await store.count_keys() == 1


async def test_ping(store: StateStore) -> None:
    await store.ping()


# quota -------------------------------------------------------------------------------
async def test_reserve_until_the_limit(store: StateStore) -> None:
    taken = [await reserve(store, "key_a", PERIOD, 3) for _ in range(3)]
    assert all(taken) and len({r.id for r in taken if r}) == 3
    assert await reserve(store, "key_a", PERIOD, 3) is None
    assert await store.credits_used("key_a", PERIOD) == 3
    # other keys and other months are separate counters
    assert await reserve(store, "key_b", PERIOD, 3) is not None
    assert await reserve(store, "key_a", "2026-04", 3) is not None
    assert await store.credits_used("key_a", PERIOD) == 3
    assert await store.credits_used("key_unknown", PERIOD) == 0
    assert await reserve(store, "key_c", PERIOD, 0) is None


async def test_refund_after_commit_changes_nothing(store: StateStore) -> None:
    reservation = await reserve(store, "key_a", PERIOD, 5)
    assert reservation is not None and reservation.key_id == "key_a" and reservation.period == PERIOD
    await store.commit_credit(reservation)
    assert await store.refund_credit(reservation) is False
    assert await store.credits_used("key_a", PERIOD) == 1
    await store.commit_credit(reservation)  # a second commit is harmless
    assert await store.credits_used("key_a", PERIOD) == 1


async def test_refund_exactly_once(store: StateStore) -> None:
    first = await reserve(store, "key_a", PERIOD, 5)
    second = await reserve(store, "key_a", PERIOD, 5)
    assert first is not None and second is not None
    assert await store.refund_credit(first) is True
    assert await store.credits_used("key_a", PERIOD) == 1
    assert await store.refund_credit(first) is False
    assert await store.credits_used("key_a", PERIOD) == 1
    await store.commit_credit(first)  # committing a refunded credit does not charge it again
    assert await store.refund_credit(first) is False
    assert await store.credits_used("key_a", PERIOD) == 1


async def test_concurrent_reservations_never_exceed_the_limit(store: StateStore) -> None:
    results = await asyncio.gather(*(reserve(store, "key_a", PERIOD, 10) for _ in range(50)))
    taken = [r for r in results if r is not None]
    assert len(taken) == 10
    assert await store.credits_used("key_a", PERIOD) == 10
    refunds = await asyncio.gather(*(store.refund_credit(r) for r in taken + taken))
    assert sum(refunds) == 10
    assert await store.credits_used("key_a", PERIOD) == 0


async def test_a_reservation_answers_the_count_in_the_same_round_trip(store: StateStore) -> None:
    first = await store.reserve_credit("key_n", PERIOD, 2, LEASE)
    second = await store.reserve_credit("key_n", PERIOD, 2, LEASE)
    refused = await store.reserve_credit("key_n", PERIOD, 2, LEASE)
    assert (first.used, second.used, refused.used) == (1, 2, 2)
    assert first.reservation and second.reservation and refused.reservation is None


async def test_a_commit_is_idempotent_and_an_unacknowledged_one_can_be_overruled(store: StateStore) -> None:
    reservation = await reserve(store, "key_o", PERIOD, 5)
    assert reservation is not None
    assert await store.commit_credit(reservation) is True
    assert await store.commit_credit(reservation) is True  # a retried commit: still one credit
    assert await store.credits_used("key_o", PERIOD) == 1
    assert await store.refund_credit(reservation) is False  # a plain refund never undoes a commit
    assert await store.refund_credit(reservation, overrule_commit=True) is True
    assert await store.credits_used("key_o", PERIOD) == 0
    assert await store.refund_credit(reservation, overrule_commit=True) is False  # once
    assert await store.commit_credit(reservation) is False  # and a late commit cannot charge it again
    assert await store.credits_used("key_o", PERIOD) == 0


async def test_a_lease_that_runs_out_is_reclaimed_and_can_no_longer_be_committed(store: StateStore) -> None:
    live = await reserve(store, "key_r", PERIOD, 5)
    short = await reserve(store, "key_r", PERIOD, 5, lease=0.2)
    assert live is not None and short is not None
    reclaimed = 0

    async def swept() -> bool:
        nonlocal reclaimed
        reclaimed += await store.reclaim_credits()
        return reclaimed > 0

    assert await wait_for(swept)  # the owner of `short` "died": nobody settles it
    assert reclaimed == 1
    assert await store.credits_used("key_r", PERIOD) == 1  # the live one only
    assert await store.commit_credit(short) is False
    assert await store.commit_credit(live) is True
    assert await store.reclaim_credits() == 0
    assert await store.credits_used("key_r", PERIOD) == 1


# rate limiting ---------------------------------------------------------------------------
@dataclass
class Limiter:
    limiter: RateLimiter
    # Let ``seconds`` pass, then hit: the local limiter's clock is moved by hand; Redis's own
    # clock cannot be, so there the hit is repeated until allowed (a refused hit takes nothing).
    hit_after: Callable[[str, PlanConfig, float], Awaitable[RateDecision]]


@pytest.fixture(params=["local", "redis", "cluster"])
async def limiter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Limiter]:
    if request.param == "local":
        # aiolimiter reads loop.time(): drive it by hand instead of sleeping.
        loop = asyncio.get_running_loop()
        now = [loop.time()]
        monkeypatch.setattr(loop, "time", lambda: now[0])

        local = LocalRateLimiter()

        async def advance_clock(key: str, plan: PlanConfig, seconds: float) -> RateDecision:
            now[0] += seconds
            return await local.hit(key, plan)

        yield Limiter(local, advance_clock)
        monkeypatch.undo()  # give the loop its clock back before pytest-asyncio continues
    else:
        store = redis_store(request)
        shared = RedisRateLimiter(store)

        async def until_allowed(key: str, plan: PlanConfig, seconds: float) -> RateDecision:
            decisions: list[RateDecision] = []

            async def allowed() -> bool:
                decisions.append(await shared.hit(key, plan))
                return decisions[-1].allowed

            await wait_for(allowed, timeout=seconds + 10)
            return decisions[-1]

        yield Limiter(shared, until_allowed)
        await store.close()


def new_key() -> str:
    return "key_" + uuid.uuid4().hex[:12]


async def test_rate_burst_of_three_on_one_per_second(limiter: Limiter) -> None:
    key = new_key()
    decisions = [await limiter.limiter.hit(key, FREE) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, False, False]
    first = decisions[0]
    assert (first.limit, first.remaining, first.retry_after, first.window) == (1, 0, 0.0, 1.0)
    assert 0 < first.reset_after <= 1
    for denied in decisions[1:]:
        assert 0 < denied.retry_after <= 1
        assert denied.remaining == 0 and denied.limit == 1
    again = await limiter.hit_after(key, FREE, decisions[-1].retry_after)
    assert again.allowed
    assert not (await limiter.limiter.hit(key, FREE)).allowed


async def test_rate_burst_plan_allows_burst_back_to_back(limiter: Limiter) -> None:
    key = new_key()
    decisions = [await limiter.limiter.hit(key, BURSTY) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 and d.window == 3.0 for d in decisions)
    assert decisions[0].reset_after == pytest.approx(1.0, abs=0.05)
    assert decisions[2].reset_after == pytest.approx(3.0, abs=0.05)
    assert 0 < decisions[3].retry_after <= 1
    # another key has its own bucket
    assert (await limiter.limiter.hit(new_key(), BURSTY)).remaining == 2


# concurrency ----------------------------------------------------------------------------
@pytest.fixture(params=["local", "redis", "cluster"])
async def gate(request: pytest.FixtureRequest) -> AsyncIterator[ConcurrencyGate]:
    if request.param == "local":
        yield LocalConcurrencyGate()
    else:
        store = redis_store(request)
        yield RedisConcurrencyGate(store)
        await store.close()


async def test_concurrency_limit_and_release(gate: ConcurrencyGate) -> None:
    first = await gate.acquire("key_a", 2)
    second = await gate.acquire("key_a", 2)
    assert first and second and first != second
    assert await gate.acquire("key_a", 2) is None
    assert await gate.acquire("key_b", 2) is not None  # per key
    await gate.release("key_a", first)
    third = await gate.acquire("key_a", 2)
    assert third is not None
    assert await gate.acquire("key_a", 2) is None
    await gate.release("key_a", "not-a-token")  # unknown tokens are ignored
    await gate.release("key_a", second)
    await gate.release("key_a", third)
    assert await gate.acquire("key_a", 2) is not None


@pytest.fixture(params=["redis", "cluster"])
async def shared_store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStateStore]:
    store = redis_store(request)
    yield store
    await store.close()


async def test_a_hold_longer_than_the_lease_survives_the_keys_next_captures(shared_store: RedisStateStore) -> None:
    # Each acquire sets the set's expiry to one lease; it must never cut short a held token's.
    gate = RedisConcurrencyGate(shared_store, lease_seconds=0.3)
    held = await gate.acquire("key_hl", 2)
    assert held is not None
    await gate.release("key_hl", held, hold_seconds=8.0)
    assert await gate.acquire("key_hl", 2) is not None  # a short capture beside the hold
    # Long after that capture's lease ran out (three leases), the hold still takes the key's one slot.
    assert not await wait_for(lambda: gate.acquire("key_hl", 1), 1.0)


async def test_a_slot_released_with_a_hold_stays_taken_until_the_hold_ends(gate: ConcurrencyGate) -> None:
    token = await gate.acquire("key_h", 1)
    assert token is not None
    await gate.release("key_h", token, hold_seconds=1.0)  # a timed-out capture's penalty
    assert await gate.acquire("key_h", 1) is None
    await gate.release("key_h", "not-a-token", hold_seconds=1.0)  # unknown tokens are not added
    assert await wait_for(lambda: gate.acquire("key_h", 1), 10.0)
