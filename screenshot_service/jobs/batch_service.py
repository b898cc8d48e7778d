"""BatchService: what POST/GET/DELETE /v1/batches do, without HTTP (SPEC §4 Batches).

Submitting a batch checks everything a job's submission checks, for every item,
before anything happens; then reserves every item's credit in one atomic step
(a quota that cannot cover them all is a 422 and nothing is reserved), and
stores the batch with its item jobs in one more.  The plan's ``max_queued_jobs``
counts the items: a batch is accepted whole or not at all.  Items are ordinary
jobs from then on (lanes, retries, settlement, ``GET /v1/jobs/{id}``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from ..capture.options import CaptureOptions
from ..config import PlanConfig
from ..egress.errors import EgressBlocked, InvalidUrl
from ..errors import BlockedTarget, ConcurrencyLimited, IdempotencyMismatch, InvalidParameter, NotFound
from ..limits.admission import LimitState
from ..log_context import REQUEST_ID
from ..state.base import KeyRecord
from .batch_body import BatchBody, parse_batch_body
from .batch_models import Batch, new_batch_id
from .idempotency import HEADER, fingerprint
from .models import CANCELED, QUEUED, WEBHOOK_PENDING, Job, new_job_id, now_utc
from .service import JobService

log = logging.getLogger("screenshot_service.jobs")

_BATCH_ID = re.compile(r"^batch_[0-9a-f]{24}$")


class BatchService:
    def __init__(
        self, jobs: JobService, *, max_batch: int, on_submitted: Callable[[int], None] = lambda items: None,
        on_canceled: Callable[[str, int], None] = lambda outcome, items: None,
    ) -> None:
        self.jobs = jobs
        self.max_batch = max_batch
        self.on_submitted = on_submitted  # metrics: one batch of this many items
        self.on_canceled = on_canceled  # metrics: ("canceled", this many items)

    async def submit(
        self, key: KeyRecord, body: dict[str, Any], *, base_url: str, idempotency_key: str | None, limits: LimitState
    ) -> tuple[Batch, list[Job | None], bool]:
        """(batch, its items, created): created is False for an Idempotency-Key replay."""
        jobs = self.jobs
        plan = jobs.admission.plan_of(key)
        parsed = parse_batch_body(body, max_batch=self.max_batch)
        count = len(parsed.items)
        if count > plan.max_queued_jobs:
            raise InvalidParameter(
                f"plan '{key.plan}' allows {plan.max_queued_jobs} unfinished job(s) per key; "
                f"a batch of {count} can never fit: split it",
                details={"fields": {"requests": f"at most {plan.max_queued_jobs} items on plan '{key.plan}'"},
                         "plan": key.plan, "max_queued_jobs": plan.max_queued_jobs},
            )
        body_print = fingerprint(body)
        if idempotency_key is not None:
            existing = await jobs.store.batches.by_idempotency_key(key.id, idempotency_key)
            if existing is not None:
                return await self._replay(existing, body_print, idempotency_key)
        if parsed.webhook_url is not None:
            await jobs.check_webhook(parsed.webhook_url)
        await self._check_items(key.plan, plan, parsed, key.id)
        reservations = await jobs.admission.reserve_many(key, plan, limits, count, jobs.retention_seconds)
        batch = Batch(
            id=new_batch_id(), key_id=key.id, job_ids=tuple(new_job_id() for _ in range(count)), base_url=base_url,
            created_at=now_utc(), webhook_url=parsed.webhook_url, idempotency_key=idempotency_key,
            fingerprint=body_print, request_id=REQUEST_ID.get(),
            webhook_status=WEBHOOK_PENDING if parsed.webhook_url else None,
        )  # fmt: skip
        items = [
            Job(id=job_id, key_id=key.id, status=QUEUED, options=options, webhook_url=None, base_url=base_url,
                created_at=batch.created_at, reservation_id=reservation.id, period=reservation.period,
                request_id=batch.request_id, batch_id=batch.id)
            for job_id, options, reservation in zip(batch.job_ids, parsed.items, reservations, strict=True)
        ]  # fmt: skip
        try:
            submitted = await jobs.store.batches.create(
                batch, items, max_active=plan.max_queued_jobs, ttl=jobs.retention_seconds
            )
        except BaseException:
            await self._refund(items)
            raise
        if submitted.outcome != "created":
            await self._refund(items)
        if submitted.outcome == "full":
            raise ConcurrencyLimited(
                f"plan '{key.plan}' allows {plan.max_queued_jobs} unfinished job(s) per key; {submitted.active} are "
                f"queued or running and this batch adds {count}; retry when enough have finished",
                retry_after=2,
                details={"plan": key.plan, "max_queued_jobs": plan.max_queued_jobs, "unfinished": submitted.active,
                         "needed": count},
            )
        assert submitted.batch is not None
        if submitted.outcome == "existing":  # a concurrent request with the same key won the race
            assert idempotency_key is not None
            return await self._replay(submitted.batch, body_print, idempotency_key)
        for _ in items:
            jobs.runner.on_state(QUEUED)
        self.on_submitted(count)
        log.info("batch queued", extra={"batch_id": batch.id, "items": count})
        jobs.runner.wake()
        return batch, list(items), True

    async def get(self, key: KeyRecord, batch_id: str) -> tuple[Batch, list[Job | None]]:
        store = self.jobs.store.batches
        batch = await store.get(batch_id) if _BATCH_ID.fullmatch(batch_id) else None
        if batch is None or batch.key_id != key.id:
            raise NotFound(f"no batch {batch_id!r} for this API key")
        return batch, await store.items(batch)

    async def cancel(self, key: KeyRecord, batch_id: str) -> tuple[Batch, list[Job | None]]:
        """Cancel every queued item (refunded); running ones finish.  Repeating it is harmless."""
        canceled = (
            await self.jobs.store.batches.cancel(batch_id, key.id, now_utc()) if _BATCH_ID.fullmatch(batch_id) else None
        )
        if canceled is None:
            raise NotFound(f"no batch {batch_id!r} for this API key")
        for _ in canceled:
            self.jobs.runner.on_state(CANCELED)
        if canceled:
            self.on_canceled(CANCELED, len(canceled))
        # As for a canceled job: the worker that takes each off the queue refunds it too (idempotent).
        await self._refund(canceled)
        self.jobs.runner.wake()
        return await self.get(key, batch_id)

    async def _refund(self, items: list[Job]) -> None:
        await asyncio.gather(*(self.jobs.admission.ledger.refund(job.reservation) for job in items))

    async def _replay(self, existing: Batch, body_print: str, key: str) -> tuple[Batch, list[Job | None], bool]:
        if existing.fingerprint != body_print:
            raise IdempotencyMismatch(
                f"{HEADER} {key!r} was already used with a different request body; use a new key for a new batch",
                details={"idempotency_key": key, "batch_id": existing.id},
            )
        return existing, await self.jobs.store.batches.items(existing), False

    async def _check_items(self, plan_name: str, plan: PlanConfig, parsed: BatchBody, account: str) -> None:
        """Every item through a job's entry checks; every problem named by where it can be fixed."""
        entry = self.jobs.entry

        async def check(index: int, opts: CaptureOptions) -> tuple[dict[str, str], bool]:
            try:
                await entry.check(plan_name, plan, opts, parsed.namer(index), account=account)
            except InvalidParameter as invalid:
                return dict(invalid.details.get("fields", {})), False
            except EgressBlocked as blocked:
                return {str(blocked.details.get("field")): blocked.message}, True
            except InvalidUrl as invalid:
                return {str(invalid.details.get("field", parsed.namer(index)("url"))): invalid.message}, False
            return {}, False

        found = [p for p in await asyncio.gather(*(check(i, o) for i, o in enumerate(parsed.parsed))) if p[0]]
        if not found:
            return
        problems = {field: why for fields, _ in found for field, why in fields.items()}
        if all(blocked for _, blocked in found):
            first = next(iter(found[0][0]))
            raise BlockedTarget(f"{len(problems)} item target(s) or proxies resolve to blocked addresses",
                                details={"field": first, "fields": problems})  # fmt: skip
        raise InvalidParameter.fields(problems)
