"""Batches on Redis, beside the job queue (redis_jobs.py), under its prefix and hash tag::

    {p}batch:{id}                   hash    the batch record; TTL = retention
    {p}bidem:{key_id}:{sha256(k)}   string  Idempotency-Key -> batch id; same TTL

Each step that touches the batch and its items is one script (redis_batch_scripts.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from ..state.errors import StateUnavailable
from ..state.redis_client import RedisClient, guarded
from . import redis_batch_scripts as lua
from .batch_models import Batch, BatchSubmitted
from .models import Job, iso


class JobQueue(Protocol):
    """What the batch store uses of the Redis job store it lives beside."""

    client: RedisClient
    prefix: str

    def job_name(self, job_id: str) -> str: ...

    async def prune(self, key_id: str) -> int: ...

    async def get(self, job_id: str) -> Job | None: ...


class RedisBatchStore:
    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self.client = jobs.client
        register = self.client.register_script
        self._create = register(lua.CREATE)
        self._cancel = register(lua.CANCEL)
        self._claim = register(lua.CLAIM_WEBHOOK)
        self._update = register(lua.UPDATE_WEBHOOK)

    def batch_name(self, batch_id: str) -> str:
        return f"{self.jobs.prefix}batch:{batch_id}"

    def _idem(self, key_id: str, idempotency_key: str | None) -> str:
        digest = hashlib.sha256((idempotency_key or "").encode()).hexdigest()
        return f"{self.jobs.prefix}bidem:{key_id}:{digest}"

    def _item_names(self, job_ids: Sequence[str]) -> list[str]:
        return [self.jobs.job_name(job_id) for job_id in job_ids]

    async def create(self, batch: Batch, jobs: Sequence[Job], *, max_active: int, ttl: float) -> BatchSubmitted:
        keys = [self.batch_name(batch.id), f"{self.jobs.prefix}queue", f"{self.jobs.prefix}active:{batch.key_id}",
                self._idem(batch.key_id, batch.idempotency_key), *self._item_names([job.id for job in jobs])]  # fmt: skip
        args: list[str | int] = [max_active, max(1, round(ttl)), 1 if batch.idempotency_key else 0, batch.id,
                                 json.dumps(batch.to_record())]  # fmt: skip
        for job in jobs:
            args += [job.id, json.dumps(job.to_record())]
        for pruned in (False, True):
            outcome, value = await guarded(self._create(keys=keys, args=args))
            if outcome == "existing":
                existing = await self.get(str(value))
                if existing is None:
                    raise StateUnavailable("the batch store changed under this request; retry", retry_after=1)
                return BatchSubmitted("existing", existing)
            if outcome == "created":
                return BatchSubmitted("created", batch)
            if pruned or await self.jobs.prune(batch.key_id) + len(jobs) > max_active:
                return BatchSubmitted("full", active=int(value))
        raise AssertionError("unreachable")

    async def get(self, batch_id: str) -> Batch | None:
        row: dict[Any, Any] = await guarded(self.client.hgetall(self.batch_name(batch_id)))
        return Batch.from_record({str(k): str(v) for k, v in row.items()}) if row.get("id") else None

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Batch | None:
        batch_id = await guarded(self.client.get(self._idem(key_id, idempotency_key)))
        return await self.get(str(batch_id)) if batch_id else None

    async def items(self, batch: Batch) -> list[Job | None]:
        async def fetch() -> list[dict[Any, Any]]:
            async with self.client.pipeline(transaction=False) as pipe:
                for name in self._item_names(batch.job_ids):
                    pipe.hgetall(name)
                return list(await pipe.execute())

        rows = await guarded(fetch())
        return [Job.from_record({str(k): str(v) for k, v in row.items()}) if row.get("id") else None for row in rows]

    async def cancel(self, batch_id: str, key_id: str, finished_at: datetime) -> list[Job] | None:
        batch = await self.get(batch_id)
        if batch is None or batch.key_id != key_id:
            return None
        keys = [self.batch_name(batch_id), f"{self.jobs.prefix}active:{key_id}", *self._item_names(batch.job_ids)]
        canceled = await guarded(self._cancel(keys=keys, args=[key_id, iso(finished_at) or "", *batch.job_ids]))
        if canceled is None:
            return None
        jobs = [await self.jobs.get(str(job_id)) for job_id in canceled]
        return [job for job in jobs if job is not None]

    async def claim_webhook(self, batch_id: str, job_id: str) -> Batch | None:
        batch = await self.get(batch_id)
        if batch is None:
            return None
        keys = [self.batch_name(batch_id), *self._item_names(batch.job_ids)]
        flat = await guarded(self._claim(keys=keys, args=[job_id]))
        if not flat:
            return None
        return Batch.from_record({str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)})

    async def update_webhook(self, batch_id: str, job_id: str, status: str, attempts: int) -> None:
        await guarded(self._update(keys=[self.batch_name(batch_id)], args=[job_id, status, str(attempts)]))
