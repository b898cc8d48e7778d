"""Shared state on Redis: keys, quota, rate limits and concurrency for several instances.

Every instance behind a load balancer talks to one Redis (or one Redis Cluster),
so a key's rate limit, concurrency cap and monthly quota hold across all of them.
Every read-check-write is one Lua script (redis_scripts.py) and every clock
reading is Redis's own ``TIME``, so instances never race and never disagree on time.

Key names and the layout of the data: redis_names.py.
Connections, timeouts and errors: redis_client.py.  Durability across a Redis
restart is Redis's job: run it with ``appendonly yes`` in production.
"""

from __future__ import annotations

import math
import secrets
import time
from datetime import datetime

from ..config import PlanConfig
from ..limits.rate import RateDecision
from ..signing import new_signing_secret
from . import redis_scripts as lua
from .base import KeyRecord, Reservation, Reserved, ReservedMany
from .errors import StateUnavailable
from .redis_client import RedisClient, connect, guarded
from .redis_names import LEDGER_SLOTS, RedisNames, lease_member, reservation_of

DEFAULT_PREFIX = "screenshot:"
RESERVATION_TTL = 40 * 86400  # a reservation outlives any capture and its month
COUNTER_TTL = 62 * 86400  # refreshed on each reserve: the counter outlives its month
RECLAIM_BATCH = 500  # reservations one reclaim sweep refunds at most (Redis is busy meanwhile)
LEASE_SECONDS = 60.0  # concurrency lease: longer than the 30 s capture deadline


class RedisStateStore:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, cluster: bool = False) -> None:
        self.client: RedisClient = connect(url, cluster=cluster)
        self.prefix = prefix
        self.names = RedisNames(prefix, cluster)
        register = self.client.register_script
        self._add_key = register(lua.ADD_KEY)
        self._revoke_key = register(lua.REVOKE_KEY)
        self._sign_key = register(lua.SIGN_KEY)
        self._reserve = register(lua.RESERVE_CREDIT)
        self._reserve_many = register(lua.RESERVE_CREDITS)
        self._commit = register(lua.COMMIT_CREDIT)
        self._refund = register(lua.REFUND_CREDIT)
        self._reclaim = register(lua.RECLAIM_CREDITS)

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
        keys = [self.names.key(record.id), self.names.key_index, self.names.key_ids]
        added = await guarded(self._add_key(keys=keys, args=args))
        if not added:
            # SQLite's UNIQUE constraints fail the same way.
            raise StateUnavailable("state store error: duplicate key id or hash")

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        # Two reads, not one script: a script may only touch the keys it is given, and the
        # record's name is known only from the index.  Records are never deleted, so the
        # second read cannot miss one the first found.
        key_id = await guarded(self.client.hget(self.names.key_index, key_hash))
        row = await self._row(str(key_id)) if key_id else {}
        if not row or not secrets.compare_digest(row.get("key_hash", ""), key_hash):
            return None
        return await self._record(row)

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await self._row(key_id)
        return await self._record(row) if row else None

    async def _row(self, key_id: str) -> dict[str, str]:
        row = await guarded(self.client.hgetall(self.names.key(key_id)))  # decode_responses: all str
        return {str(k): str(v) for k, v in row.items()}

    async def list_keys(self) -> list[KeyRecord]:
        async def fetch() -> list[dict[str, str]]:
            ids = await self.client.zrange(self.names.key_ids, 0, -1)
            if not ids:
                return []
            # Not a transaction (a cluster allows none across slots; these share one anyway).
            async with self.client.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hgetall(self.names.key(str(key_id)))
                return list(await pipe.execute())

        return [await self._record(row) for row in await guarded(fetch()) if row]

    async def _record(self, row: dict[str, str]) -> KeyRecord:
        if not row.get("signing_secret"):
            # A key stored before signed links gets its secret on first read.  HSETNX keeps the
            # one another instance gave first; the script answers whichever is stored.
            stored = await guarded(self._sign_key(keys=[self.names.key(row["id"])], args=[new_signing_secret()]))
            row["signing_secret"] = str(stored or "")  # "" (key gone meanwhile) verifies nothing
        return _key_record(row)

    async def revoke_key(self, key_id: str) -> bool:
        return bool(await guarded(self._revoke_key(keys=[self.names.key(key_id)])))

    async def count_keys(self) -> int:
        return int(await guarded(self.client.zcard(self.names.key_ids)))

    # quota ------------------------------------------------------------------------
    async def reserve_credit(self, key_id: str, period: str, limit: int, lease_seconds: float) -> Reserved:
        reservation = Reservation(id=secrets.token_hex(12), key_id=key_id, period=period)
        keys = [self.names.quota(key_id, period), self.names.reservation(reservation), self.names.leases_of(key_id)]
        args: list[str | int] = [limit, RESERVATION_TTL, COUNTER_TTL, max(1, round(lease_seconds * 1000)),
                                 lease_member(reservation)]  # fmt: skip
        taken, used = await guarded(self._reserve(keys=keys, args=args))
        return Reserved(reservation if int(taken) else None, max(0, int(used)))

    async def reserve_credits(
        self, key_id: str, period: str, limit: int, count: int, lease_seconds: float
    ) -> ReservedMany:
        # One script: every reservation of one key shares its ledger slot (redis_names.py).
        reservations = tuple(Reservation(id=secrets.token_hex(12), key_id=key_id, period=period) for _ in range(count))
        keys = [self.names.quota(key_id, period), self.names.leases_of(key_id),
                *map(self.names.reservation, reservations)]  # fmt: skip
        args: list[str | int] = [limit, count, RESERVATION_TTL, COUNTER_TTL, max(1, round(lease_seconds * 1000)),
                                 *map(lease_member, reservations)]  # fmt: skip
        taken, used = await guarded(self._reserve_many(keys=keys, args=args))
        return ReservedMany(reservations if int(taken) else None, max(0, int(used)))

    async def commit_credit(self, reservation: Reservation) -> bool:
        keys = [self.names.reservation(reservation), self.names.leases_of(reservation.key_id)]
        return bool(await guarded(self._commit(keys=keys, args=[lease_member(reservation)])))

    async def refund_credit(self, reservation: Reservation, *, overrule_commit: bool = False) -> bool:
        keys = [self.names.reservation(reservation), self.names.leases_of(reservation.key_id),
                self.names.quota(reservation.key_id, reservation.period)]  # fmt: skip
        args: list[str | int] = [lease_member(reservation), int(overrule_commit)]
        return bool(await guarded(self._refund(keys=keys, args=args)))

    async def reclaim_credits(self) -> int:
        """Read the run-out leases of every lease set at once, then refund them, one script per
        set (in its slot), at most RECLAIM_BATCH in all."""
        # This clock only picks candidates; the script judges each lease on Redis's.
        now_ms = repr(time.time() * 1000)

        async def run_out() -> list[list[str]]:
            async with self.client.pipeline(transaction=False) as pipe:  # one round trip a node
                for slot in range(LEDGER_SLOTS):
                    pipe.zrangebyscore(self.names.leases(slot), "-inf", now_ms, start=0, num=RECLAIM_BATCH)
                return [[str(m) for m in members] for members in await pipe.execute()]

        reclaimed = 0
        for slot, members in enumerate(await guarded(run_out())):
            if members and reclaimed < RECLAIM_BATCH:
                members = members[: RECLAIM_BATCH - reclaimed]
                keys = [self.names.leases(slot)]
                for reservation in map(reservation_of, members):
                    keys += [self.names.reservation(reservation), self.names.quota(reservation.key_id,
                                                                                    reservation.period)]
                reclaimed += int(await guarded(self._reclaim(keys=keys, args=members)))
        return reclaimed

    async def credits_used(self, key_id: str, period: str) -> int:
        used = await guarded(self.client.get(self.names.quota(key_id, period)))
        return max(0, int(used)) if used else 0

    async def close(self) -> None:
        await guarded(self.client.aclose())


def _source(source: RedisStateStore | RedisClient) -> tuple[RedisClient, str]:
    if isinstance(source, RedisStateStore):
        return source.client, source.prefix
    return source, DEFAULT_PREFIX


class RedisRateLimiter:
    """The leaky bucket of LocalRateLimiter, kept in Redis and shared by every instance.

    Buckets are per key id (not per plan, unlike the local registry): a plan
    change keeps the current level instead of handing out a fresh burst.
    """

    def __init__(self, source: RedisStateStore | RedisClient) -> None:
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
        self, source: RedisStateStore | RedisClient, *, lease_seconds: float = LEASE_SECONDS
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


def open_redis_backend(
    url: str, *, cluster: bool = False
) -> tuple[RedisStateStore, RedisRateLimiter, RedisConcurrencyGate]:
    """Store, limiter and gate on one client; close the store to close them all.

    Nothing connects yet: ``await store.ping()`` to check Redis is there.
    """
    store = RedisStateStore(url, cluster=cluster)
    return store, RedisRateLimiter(store), RedisConcurrencyGate(store)


def _key_record(row: dict[str, str]) -> KeyRecord:
    return KeyRecord(id=row["id"], name=row["name"], plan=row["plan"],
                     created_at=datetime.fromisoformat(row["created_at"]), revoked=row.get("revoked") == "1",
                     webhook_secret=row["webhook_secret"], signing_secret=row["signing_secret"])  # fmt: skip
