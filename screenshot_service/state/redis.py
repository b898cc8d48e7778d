"""Shared state on Redis: keys, quota, rate limits and concurrency for several instances.

Every instance behind a load balancer talks to one Redis, so a key's rate
limit, concurrency cap and monthly quota hold across all of them.  Every
read-check-write is one Lua script (redis_scripts.py) and every clock reading
is Redis's own ``TIME``, so instances never race and never disagree on time.

Layout (``prefix`` defaults to ``screenshot:``)::

    {p}key:{id}               hash   one KeyRecord + key_hash (signing_secret added on first read
                                     to keys stored before signed links)
    {p}keyhash                hash   key_hash -> id (the lookup index)
    {p}keys                   zset   ids by created_at (listing, counting)
    {p}quota:{key_id}:{YYYY-MM} int  credits used that month (expires 62 days after last use)
    {p}res:{id}               hash   s = reserved | committed | refunded, q = its month counter,
                                     e = lease end (ms, Redis time); expires after 40 days
    {p}leases                 zset   reserved ids scored by lease end (the reclaim sweep)
    {p}rate:{key_id}          hash   leaky bucket level + time (expires when empty)
    {p}conc:{key_id}          zset   in-flight tokens scored by lease expiry

A dead Redis must fail fast, not hang requests: short socket timeouts, no
retries, a bounded pool, and every error becomes ``StateUnavailable`` (503).
The pool checks a connection before handing it out and reconnects, so the same
objects work again as soon as Redis is back.  Durability across a Redis
restart is Redis's job: run it with ``appendonly yes`` in production.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..config import PlanConfig
from ..limits.rate import RateDecision
from ..signing import new_signing_secret
from . import redis_scripts as lua
from .base import KeyRecord, Reservation, Reserved
from .errors import StateUnavailable

T = TypeVar("T")

DEFAULT_PREFIX = "screenshot:"
CONNECT_TIMEOUT = 2.0  # seconds to open a connection
SOCKET_TIMEOUT = 2.0  # seconds for one command's answer
POOL_SIZE = 64  # connections per instance; more callers wait for one...
POOL_WAIT = 2.0  # ...at most this long, then 503
RESERVATION_TTL = 40 * 86400  # a reservation outlives any capture and its month
COUNTER_TTL = 62 * 86400  # refreshed on each reserve: the counter outlives its month
RECLAIM_BATCH = 500  # reservations one reclaim sweep refunds at most (one script: Redis is busy meanwhile)
LEASE_SECONDS = 60.0  # concurrency lease: longer than the 30 s capture deadline

_REDIS_ERRORS = (RedisError, OSError)  # OSError covers TimeoutError and refused sockets


def unavailable(exc: BaseException) -> StateUnavailable:
    # The class name only: redis-py messages carry host:port, and never the URL.
    return StateUnavailable(f"state store (Redis) unavailable: {type(exc).__name__}", retry_after=1)


async def guarded(awaitable: Awaitable[T]) -> T:
    """Await one Redis operation; any Redis or socket failure becomes StateUnavailable."""
    try:
        return await awaitable
    except _REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def connect(url: str) -> aioredis.Redis:
    """A client on its own bounded pool; no connection is made until first use."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        # RESP2: under RESP3, redis-py 8 turns on "maintenance notifications" and
        # then skips its check of pooled connections, so after a Redis restart
        # every stale idle connection would fail one call.
        protocol=2,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool


class RedisStateStore:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = connect(url)
        self.prefix = prefix
        register = self.client.register_script
        self._add_key = register(lua.ADD_KEY)
        self._key_by_hash = register(lua.KEY_BY_HASH)
        self._revoke_key = register(lua.REVOKE_KEY)
        self._sign_key = register(lua.SIGN_KEY)
        self._reserve = register(lua.RESERVE_CREDIT)
        self._commit = register(lua.COMMIT_CREDIT)
        self._refund = register(lua.REFUND_CREDIT)
        self._reclaim = register(lua.RECLAIM_CREDITS)

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}key:{key_id}"

    def _quota(self, key_id: str, period: str) -> str:
        return f"{self.prefix}quota:{key_id}:{period}"

    def _reservation(self, reservation_id: str) -> str:
        return f"{self.prefix}res:{reservation_id}"

    @property
    def _leases(self) -> str:
        return f"{self.prefix}leases"

    async def ping(self) -> None:
        await guarded(self.client.ping())

    # keys ------------------------------------------------------------------------
    async def add_key(self, record: KeyRecord, key_hash: str) -> None:
        fields = {
            "id": record.id,
            "key_hash": key_hash,
            "name": record.name,
            "plan": record.plan,
            "created_at": record.created_at.isoformat(),
            "revoked": "1" if record.revoked else "0",
            "webhook_secret": record.webhook_secret,
            "signing_secret": record.signing_secret,
        }
        args: list[str | float] = [record.id, key_hash, record.created_at.timestamp()]
        for name, value in fields.items():
            args += [name, value]
        keys = [self._key(record.id), f"{self.prefix}keyhash", f"{self.prefix}keys"]
        added = await guarded(self._add_key(keys=keys, args=args))
        if not added:
            # SQLite's UNIQUE constraints fail the same way.
            raise StateUnavailable("state store error: duplicate key id or hash")

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        flat = await guarded(
            self._key_by_hash(keys=[f"{self.prefix}keyhash"], args=[key_hash, f"{self.prefix}key:"])
        )
        row = _pairs(flat)
        if not row or not secrets.compare_digest(row.get("key_hash", ""), key_hash):
            return None
        return await self._record(row)

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await guarded(self.client.hgetall(self._key(key_id)))  # decode_responses: all str
        return await self._record({str(k): str(v) for k, v in row.items()}) if row else None

    async def list_keys(self) -> list[KeyRecord]:
        async def fetch() -> list[dict[str, str]]:
            ids = await self.client.zrange(f"{self.prefix}keys", 0, -1)
            if not ids:
                return []
            async with self.client.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hgetall(self._key(str(key_id)))
                return list(await pipe.execute())

        return [await self._record(row) for row in await guarded(fetch()) if row]

    async def _record(self, row: dict[str, str]) -> KeyRecord:
        if not row.get("signing_secret"):
            # A key stored before signed links gets its secret on first read.  HSETNX keeps the
            # one another instance gave first; the script answers whichever is stored.
            stored = await guarded(self._sign_key(keys=[self._key(row["id"])], args=[new_signing_secret()]))
            row["signing_secret"] = str(stored or "")  # "" (key gone meanwhile) verifies nothing
        return _key_record(row)

    async def revoke_key(self, key_id: str) -> bool:
        return bool(await guarded(self._revoke_key(keys=[self._key(key_id)])))

    async def count_keys(self) -> int:
        return int(await guarded(self.client.zcard(f"{self.prefix}keys")))

    # quota ------------------------------------------------------------------------
    async def reserve_credit(self, key_id: str, period: str, limit: int, lease_seconds: float) -> Reserved:
        reservation = Reservation(id=secrets.token_hex(12), key_id=key_id, period=period)
        keys = [self._quota(key_id, period), self._reservation(reservation.id), self._leases]
        args: list[str | int] = [limit, RESERVATION_TTL, COUNTER_TTL, max(1, round(lease_seconds * 1000)), reservation.id]
        taken, used = await guarded(self._reserve(keys=keys, args=args))
        return Reserved(reservation if int(taken) else None, max(0, int(used)))

    async def commit_credit(self, reservation: Reservation) -> bool:
        keys = [self._reservation(reservation.id), self._leases]
        return bool(await guarded(self._commit(keys=keys, args=[reservation.id])))

    async def refund_credit(self, reservation: Reservation, *, overrule_commit: bool = False) -> bool:
        keys = [self._reservation(reservation.id), self._leases]
        return bool(await guarded(self._refund(keys=keys, args=[reservation.id, int(overrule_commit)])))

    async def reclaim_credits(self) -> int:
        args: list[str | int] = [f"{self.prefix}res:", RECLAIM_BATCH]
        return int(await guarded(self._reclaim(keys=[self._leases], args=args)))

    async def credits_used(self, key_id: str, period: str) -> int:
        used = await guarded(self.client.get(self._quota(key_id, period)))
        return max(0, int(used)) if used else 0

    async def close(self) -> None:
        await guarded(self.client.aclose())


def _source(source: RedisStateStore | aioredis.Redis) -> tuple[aioredis.Redis, str]:
    if isinstance(source, RedisStateStore):
        return source.client, source.prefix
    return source, DEFAULT_PREFIX


class RedisRateLimiter:
    """The leaky bucket of LocalRateLimiter, kept in Redis and shared by every instance.

    Buckets are per key id (not per plan, unlike the local registry): a plan
    change keeps the current level instead of handing out a fresh burst.
    """

    def __init__(self, source: RedisStateStore | aioredis.Redis) -> None:
        self.client, self.prefix = _source(source)
        self._hit = self.client.register_script(lua.RATE_HIT)

    async def hit(self, key_id: str, plan: PlanConfig) -> RateDecision:
        rate, burst = plan.requests_per_second, plan.burst
        result = await guarded(
            self._hit(keys=[f"{self.prefix}rate:{key_id}"], args=[repr(float(rate)), burst])
        )
        allowed, level = bool(int(result[0])), float(result[1])
        return RateDecision(
            allowed=allowed,
            limit=burst,
            remaining=max(0, math.floor(burst - level)),
            reset_after=level / rate,
            retry_after=0.0 if allowed else max(0.0, (level + 1 - burst) / rate),
            window=burst / rate,
        )


class RedisConcurrencyGate:
    """In-flight captures per key across instances, as leases that expire by themselves.

    A crashed instance never releases its tokens; they drop out once their
    lease (``lease_seconds``, longer than any capture) has passed.
    """

    def __init__(
        self, source: RedisStateStore | aioredis.Redis, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.client, self.prefix = _source(source)
        self.lease_ms = max(1, round(lease_seconds * 1000))
        self._acquire = self.client.register_script(lua.CONCURRENCY_ACQUIRE)
        self._release = self.client.register_script(lua.CONCURRENCY_RELEASE)

    def _running(self, key_id: str) -> str:
        return f"{self.prefix}conc:{key_id}"

    async def acquire(self, key_id: str, limit: int) -> str | None:
        if limit < 1:
            return None
        token = secrets.token_hex(8)
        got = await guarded(self._acquire(keys=[self._running(key_id)], args=[limit, token, self.lease_ms]))
        return token if got else None

    async def release(self, key_id: str, token: str, hold_seconds: float = 0.0) -> None:
        # Raises StateUnavailable like every call; a caller may ignore it, the lease expires anyway.
        await guarded(self._release(keys=[self._running(key_id)], args=[token, round(hold_seconds * 1000)]))


def open_redis_backend(url: str) -> tuple[RedisStateStore, RedisRateLimiter, RedisConcurrencyGate]:
    """Store, limiter and gate on one client; close the store to close them all.

    Nothing connects yet: ``await store.ping()`` to check Redis is there.
    """
    store = RedisStateStore(url)
    return store, RedisRateLimiter(store), RedisConcurrencyGate(store)


def _pairs(flat: Sequence[Any] | None) -> dict[str, str]:
    if not flat:
        return {}
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _key_record(row: dict[str, str]) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        plan=row["plan"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked=row.get("revoked") == "1",
        webhook_secret=row["webhook_secret"],
        signing_secret=row["signing_secret"],
    )
