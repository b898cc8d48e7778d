"""Redis-only behaviour: several instances share one limit and one quota, leases
expire by themselves, and an outage is a fast 503 that heals without a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from screenshot_service.config import PlanConfig
from screenshot_service.error_map import as_api_error
from screenshot_service.state.base import KeyRecord, Reservation
from screenshot_service.state.errors import StateUnavailable
from screenshot_service.state.redis import (
    DEFAULT_PREFIX,
    RedisConcurrencyGate,
    RedisRateLimiter,
    RedisStateStore,
    open_redis_backend,
)
from screenshot_service.state.redis_client import SOCKET_TIMEOUT
from tests.conftest import answered_by, wait_for
from tests.test_state_contract import reserve

if TYPE_CHECKING:
    from tests.redis_server import RedisTestServer

pytest_plugins = ["tests.redis_server"]

PERIOD = "2026-03"
FREE = PlanConfig(requests_per_second=1, burst=1)
BURSTY = PlanConfig(requests_per_second=1, burst=3)
PASSWORD = "hunter2-Sup3rSecret"


@pytest.fixture
async def two_instances(
    redis_server: RedisTestServer,
) -> AsyncIterator[tuple[RedisStateStore, RedisStateStore]]:
    """Two stores with their own clients and pools, as two service instances would have."""
    redis_server.start()
    redis_server.flush()
    first, second = RedisStateStore(redis_server.url), RedisStateStore(redis_server.url)
    yield first, second
    await first.close()
    await second.close()


def record(key_id: str) -> KeyRecord:
    return KeyRecord(id=key_id, name="n", plan="free", created_at=datetime.now(UTC), revoked=False,
                     webhook_secret="whsec_x", signing_secret="sign_x")  # fmt: skip


# sharing between instances --------------------------------------------------------------
async def test_instances_share_one_quota(two_instances: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = two_instances
    results = await asyncio.gather(
        *(reserve(store, "key_q", PERIOD, 10) for _ in range(20) for store in (a, b))
    )
    taken = [r for r in results if r is not None]
    assert len(taken) == 10
    assert await a.credits_used("key_q", PERIOD) == await b.credits_used("key_q", PERIOD) == 10
    # a credit reserved by one instance can be refunded by another, still only once
    assert await b.refund_credit(taken[0]) is True
    assert await a.refund_credit(taken[0]) is False
    await a.commit_credit(taken[1])
    assert await b.refund_credit(taken[1]) is False
    assert await a.credits_used("key_q", PERIOD) == 9


async def test_instances_share_keys(two_instances: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = two_instances
    await a.add_key(record("key_shared"), "hash_shared")
    found = await b.key_by_hash("hash_shared")
    assert found is not None and found.id == "key_shared"
    assert await b.revoke_key("key_shared")
    found = await a.key_by_hash("hash_shared")
    assert found is not None and found.revoked
    assert await a.count_keys() == await b.count_keys() == 1


async def test_instances_share_one_rate_limit(two_instances: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = (RedisRateLimiter(store) for store in two_instances)
    assert (await a.hit("key_r", FREE)).allowed
    denied = await b.hit("key_r", FREE)
    assert not denied.allowed and 0 < denied.retry_after <= 1
    decisions = [await limiter.hit("key_burst", BURSTY) for limiter in (a, b, a, b)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_instances_share_one_concurrency_cap(
    two_instances: tuple[RedisStateStore, RedisStateStore],
) -> None:
    a, b = (RedisConcurrencyGate(store) for store in two_instances)
    token = await a.acquire("key_c", 2)
    assert token is not None and await b.acquire("key_c", 2) is not None
    assert await a.acquire("key_c", 2) is None and await b.acquire("key_c", 2) is None
    await b.release("key_c", token)  # released by any instance
    assert await a.acquire("key_c", 2) is not None


# expiry -----------------------------------------------------------------------------------
async def test_expired_concurrency_leases_free_themselves(redis_store: RedisStateStore) -> None:
    crashed = RedisConcurrencyGate(redis_store, lease_seconds=0.2)  # acquires, never releases
    assert await crashed.acquire("key_l", 1) is not None
    assert await crashed.acquire("key_l", 1) is None
    gate = RedisConcurrencyGate(redis_store)

    async def freed() -> bool:  # once the dead holder's lease has run out, on Redis's clock
        return await gate.acquire("key_l", 1) is not None

    assert await wait_for(freed)
    ttl = await redis_store.client.pttl(f"{DEFAULT_PREFIX}conc:key_l")
    assert 55_000 < ttl <= 60_000  # the set itself goes once every lease in it has passed


async def test_keys_expire(redis_store: RedisStateStore) -> None:
    client = redis_store.client
    await RedisRateLimiter(redis_store).hit("key_e", BURSTY)
    assert 0 < await client.pttl(f"{DEFAULT_PREFIX}rate:key_e") <= 1001  # gone when the bucket is empty
    reservation = await reserve(redis_store, "key_e", PERIOD, 5)
    assert reservation is not None
    days = 86400
    assert 61 * days < await client.ttl(f"{DEFAULT_PREFIX}quota:key_e:{PERIOD}") <= 62 * days
    await redis_store.commit_credit(reservation)
    assert 39 * days < await client.ttl(f"{DEFAULT_PREFIX}res:{reservation.id}") <= 40 * days


# layout and wiring ----------------------------------------------------------------------------
async def test_everything_lives_under_the_prefix(redis_store: RedisStateStore) -> None:
    await redis_store.add_key(record("key_p"), "hash_p")
    await reserve(redis_store, "key_p", PERIOD, 1)
    await RedisRateLimiter(redis_store).hit("key_p", FREE)
    await RedisConcurrencyGate(redis_store).acquire("key_p", 1)
    names = [name async for name in redis_store.client.scan_iter()]
    assert len(names) >= 6 and all(name.startswith(DEFAULT_PREFIX) for name in names)


async def test_duplicate_key_is_refused(redis_store: RedisStateStore) -> None:
    await redis_store.add_key(record("key_d"), "hash_d")
    with pytest.raises(StateUnavailable):
        await redis_store.add_key(record("key_d"), "hash_other")
    with pytest.raises(StateUnavailable):
        await redis_store.add_key(record("key_other"), "hash_d")
    assert await redis_store.key_by_hash("hash_other") is None
    assert await redis_store.count_keys() == 1


async def test_open_redis_backend_shares_one_client(redis_server: RedisTestServer) -> None:
    redis_server.start()
    store, limiter, gate = open_redis_backend(redis_server.url)
    assert limiter.client is store.client and gate.client is store.client
    await store.ping()
    assert (await limiter.hit(uuid.uuid4().hex, FREE)).allowed
    assert await gate.acquire(uuid.uuid4().hex, 1) is not None
    await store.close()


async def test_more_callers_than_connections_wait_for_one(redis_store: RedisStateStore) -> None:
    results = await asyncio.gather(*(reserve(redis_store, "key_many", PERIOD, 150) for _ in range(200)))
    assert sum(r is not None for r in results) == 150


# outage ------------------------------------------------------------------------------------------
def every_call(store: RedisStateStore) -> dict[str, Callable[[], Awaitable[Any]]]:
    limiter, gate = RedisRateLimiter(store), RedisConcurrencyGate(store)
    reservation = Reservation(id="r1", key_id="key_o", period=PERIOD)
    return {
        "ping": store.ping,
        "add_key": lambda: store.add_key(record("key_o"), "hash_o"),
        "key_by_hash": lambda: store.key_by_hash("hash_o"),
        "list_keys": store.list_keys,
        "revoke_key": lambda: store.revoke_key("key_o"),
        "count_keys": store.count_keys,
        "reserve_credit": lambda: store.reserve_credit("key_o", PERIOD, 5, 60),
        "reclaim_credits": store.reclaim_credits,
        "commit_credit": lambda: store.commit_credit(reservation),
        "refund_credit": lambda: store.refund_credit(reservation),
        "credits_used": lambda: store.credits_used("key_o", PERIOD),
        "rate.hit": lambda: limiter.hit("key_o", FREE),
        "gate.acquire": lambda: gate.acquire("key_o", 1),
        "gate.release": lambda: gate.release("key_o", "token"),
    }


async def test_outage_is_a_fast_503_and_heals(redis_server: RedisTestServer) -> None:
    redis_server.start()
    host_port = f"127.0.0.1:{redis_server.port}"
    store = RedisStateStore(redis_server.url)
    secret_store = RedisStateStore(f"redis://:{PASSWORD}@{host_port}/0")
    # fill the pool with idle connections that the outage will leave stale
    await asyncio.gather(*(store.credits_used(f"key_{n}", PERIOD) for n in range(20)))
    redis_server.stop()
    try:
        for which in (store, secret_store):
            for name, call in every_call(which).items():
                with pytest.raises(StateUnavailable) as caught:
                    await answered_by(call(), SOCKET_TIMEOUT)  # fails fast: never hangs on a dead Redis
                error = as_api_error(caught.value)
                assert (error.status, error.code, error.retry_after) == (503, "state_unavailable", 1), name
                assert error.message.startswith("state store (Redis) unavailable: "), error.message
                for text in (str(error), repr(error), str(error.to_dict())):
                    assert PASSWORD not in text and host_port not in text and "redis://" not in text
    finally:
        redis_server.start()
    # the same objects work again, stale pooled connections included
    await asyncio.gather(*(store.ping() for _ in range(20)))
    for call in every_call(store).values():
        await call()
    assert await store.credits_used("key_o", PERIOD) == 1
    await store.close()
    await secret_store.close()


async def test_credentials_in_the_url_are_used_and_never_shown(redis_server: RedisTestServer) -> None:
    redis_server.start()
    admin = RedisStateStore(redis_server.url).client
    await admin.acl_setuser("svc", enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"])
    where = f"127.0.0.1:{redis_server.port}/0"
    good = RedisStateStore(f"redis://svc:{PASSWORD}@{where}")
    bad = RedisStateStore(f"redis://svc:{PASSWORD}-wrong@{where}")
    try:
        await good.ping()
        with pytest.raises(StateUnavailable) as caught:
            await bad.ping()
        assert caught.value.message == "state store (Redis) unavailable: AuthenticationError"
        assert PASSWORD not in str(as_api_error(caught.value).to_dict())
    finally:
        await admin.acl_deluser("svc")
        for client in (good.client, bad.client, admin):
            await client.aclose()


def test_server_restarts_on_the_same_port(redis_server: RedisTestServer) -> None:
    port, pid = redis_server.port, redis_server.pid
    redis_server.stop()
    assert not redis_server.running
    redis_server.start()
    assert redis_server.port == port and redis_server.pid != pid and redis_server.running
    assert redis_server.url == f"redis://127.0.0.1:{port}/0"
