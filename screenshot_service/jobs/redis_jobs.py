"""Jobs on Redis: one queue shared by every instance behind the load balancer.

Any instance can accept, run or answer for any job.  Layout (``prefix``
defaults to ``screenshot:jobs:``, apart from the state store's keys; on a Redis
Cluster ``screenshot:{jobs}:``, a hash tag that keeps every key of the queue in
one slot, as the scripts, which get all their keys in KEYS, need)::

    {p}job:{id}                    hash    the job record (+ ``owner`` while leased); TTL = retention
    {p}queue                       list    ids waiting for a worker (LPUSH in, RPOP out: FIFO)
    {p}leases                      zset    claimed ids scored by lease expiry (ms, Redis TIME)
    {p}active:{key_id}             set     the key's unfinished job ids (max_queued_jobs)
    {p}idem:{key_id}:{sha256(k)}   string  Idempotency-Key -> job id; same TTL as the job
    {p}claim:{token}               string  the job a claim took, for a repeat of it; TTL = lease
    {p}batch:{id}, {p}bidem:…      batches beside the queue (redis_batches.py)

A claim moves an id from the queue into the lease set in one script, so a
crash between the two cannot lose it; a lease that is not renewed (its instance
died) runs out and the next claim on any instance takes the job over.  That
script must be given the job's record, so a read-only script first names the
candidate (``peek_claim``), and the claim takes it only if it still is one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..state.errors import StateUnavailable
from ..state.redis_client import RedisClient, connect, guarded
from . import redis_scripts as lua
from .models import Job, iso, now_utc
from .redis_batches import RedisBatchStore
from .store import Submitted

DEFAULT_PREFIX = "screenshot:jobs:"
CLUSTER_PREFIX = "screenshot:{jobs}:"
CLAIM_ATTEMPTS = 100  # candidates one claim looks at (each a stale id dropped, or a lost race)
_FINISH_FIELDS = ("status", "finished_at", "result", "error", "webhook_status", "webhook_attempts")


class RedisJobStore:
    def __init__(self, url: str, *, prefix: str | None = None, cluster: bool = False) -> None:
        self.client: RedisClient = connect(url, cluster=cluster)
        self.prefix = prefix or (CLUSTER_PREFIX if cluster else DEFAULT_PREFIX)
        register = self.client.register_script
        self._create = register(lua.CREATE)
        self._prune_active = register(lua.PRUNE_ACTIVE)
        self._peek = register(lua.PEEK)
        self._claim = register(lua.CLAIM)
        self._renew = register(lua.RENEW)
        self._finish = register(lua.FINISH)
        self._update = register(lua.UPDATE_OWNED)
        self._ack = register(lua.ACK)
        self._release = register(lua.RELEASE)
        self._cancel = register(lua.CANCEL)
        self.batches = RedisBatchStore(self)

    # -- key names -----------------------------------------------------------------------
    def job_name(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _active(self, key_id: str) -> str:
        return f"{self.prefix}active:{key_id}"

    def idem_name(self, key_id: str, idempotency_key: str | None) -> str:
        # Hashed: the header is caller text of any shape; the key name stays short and plain.
        digest = hashlib.sha256((idempotency_key or "").encode()).hexdigest()
        return f"{self.prefix}idem:{key_id}:{digest}"

    @property
    def _queue(self) -> str:
        return f"{self.prefix}queue"

    @property
    def _leases(self) -> str:
        return f"{self.prefix}leases"

    # -- JobStore ---------------------------------------------------------------------------
    async def create(self, job: Job, *, max_active: int, ttl: float) -> Submitted:
        idem = self.idem_name(job.key_id, job.idempotency_key)
        believed, pruned = "", False
        for _ in range(3):  # a "moved" or a prune, then the answer
            keys = [self.job_name(job.id), self._queue, self._active(job.key_id), idem,
                    self.job_name(believed) if believed else self.job_name(job.id)]  # fmt: skip
            args: list[str | int] = [max_active, _seconds(ttl), 1 if job.idempotency_key else 0, job.id, believed]
            for name, value in job.to_record().items():
                args += [name, value]
            outcome, value = await guarded(self._create(keys=keys, args=args))
            if outcome == "moved":
                believed = str(value)
            elif outcome == "full" and not pruned:
                pruned = True
                remaining = await self.prune(job.key_id)
                if remaining >= max_active:
                    return Submitted("full", active=remaining)
            elif outcome == "full":
                return Submitted("full", active=int(value))
            elif outcome == "existing":
                existing = await self.get(str(value))
                if existing is None:  # expired between the script and this read: a retry will create
                    break
                return Submitted("existing", existing)
            else:
                return Submitted("created", job)
        raise StateUnavailable("the job store changed under this request; retry", retry_after=1)

    async def prune(self, key_id: str) -> int:
        """Drop the key's active ids whose record has expired; how many remain."""
        ids = [str(i) for i in await guarded(self.client.smembers(self._active(key_id)))]
        keys = [self._active(key_id), *map(self.job_name, ids)]
        return int(await guarded(self._prune_active(keys=keys, args=ids)))

    async def get(self, job_id: str) -> Job | None:
        row: dict[Any, Any] = await guarded(self.client.hgetall(self.job_name(job_id)))
        return _job({str(k): str(v) for k, v in row.items()})

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Job | None:
        job_id = await guarded(self.client.get(self.idem_name(key_id, idempotency_key)))
        return await self.get(str(job_id)) if job_id else None

    async def claim(self, owner: str, lease: float, token: str = "") -> Job | None:
        peek_token = token
        for _ in range(CLAIM_ATTEMPTS):
            candidate = await self.peek_claim(peek_token)
            if candidate is None:
                return None
            if candidate[0] == "token":
                peek_token = ""  # asked once: it either answers now or no longer holds
            taken = await self.take_claim(owner, lease, token, candidate)
            if taken is not None:
                return taken
        return None  # only stale ids or lost races so far: the next poll goes on

    async def peek_claim(self, token: str) -> tuple[str, str] | None:
        """The claim's first step: (source, job id) of the job a claim would take now, or None."""
        keys = [self._queue, self._leases, f"{self.prefix}claim:{token}"]
        found = await guarded(self._peek(keys=keys, args=[token]))
        return (str(found[0]), str(found[1])) if found else None

    async def take_claim(self, owner: str, lease: float, token: str, candidate: tuple[str, str]) -> Job | None:
        """The claim's second step: the candidate, if it still is one; None: peek again."""
        source, job_id = candidate
        keys = [self._queue, self._leases, f"{self.prefix}claim:{token}", self.job_name(job_id)]
        args: list[str | int] = [owner, _ms(lease), iso(now_utc()) or "", token, job_id, source]
        flat = await guarded(self._claim(keys=keys, args=args))
        return None if not flat or flat[0] == "again" else _job(_pairs(flat))

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        renewed = await guarded(self._renew(keys=[self._leases, self.job_name(job_id)], args=[owner, _ms(lease), job_id]))
        return bool(renewed)

    async def finish(self, job: Job, owner: str, ttl: float) -> bool:
        record = job.to_record()
        args: list[str | int] = [owner, _seconds(ttl), job.id]
        for name in _FINISH_FIELDS:
            args += [name, record[name]]
        keys = [self.job_name(job.id), self._active(job.key_id), self.idem_name(job.key_id, job.idempotency_key)]
        return bool(await guarded(self._finish(keys=keys, args=args)))

    async def update_webhook(self, job_id: str, owner: str, status: str, attempts: int) -> None:
        args = [owner, "webhook_status", status, "webhook_attempts", str(attempts)]
        await guarded(self._update(keys=[self.job_name(job_id)], args=args))

    async def ack(self, job_id: str, owner: str) -> None:
        await guarded(self._ack(keys=[self._leases, self.job_name(job_id)], args=[owner, job_id]))

    async def release(self, job_id: str, owner: str) -> None:
        await guarded(self._release(keys=[self._leases, self.job_name(job_id), self._queue], args=[owner, job_id]))

    async def cancel(self, job_id: str, key_id: str, finished_at: datetime) -> Job | None:
        flat = await guarded(
            self._cancel(keys=[self.job_name(job_id), self._active(key_id)], args=[key_id, iso(finished_at) or "", job_id])
        )
        return _job(_pairs(flat))

    async def queued(self) -> int:
        return int(await guarded(self.client.llen(self._queue)))

    async def sweep(self) -> int:
        return 0  # every record carries its own TTL

    async def close(self) -> None:
        await guarded(self.client.aclose())


def _seconds(ttl: float) -> int:
    return max(1, round(ttl))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _pairs(flat: Sequence[Any] | None) -> dict[str, str]:
    if not flat:
        return {}
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _job(row: dict[str, Any] | None) -> Job | None:
    return Job.from_record(row) if row and "id" in row else None
