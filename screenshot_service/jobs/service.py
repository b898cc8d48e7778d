"""JobService: what POST/GET/DELETE /v1/jobs do, without HTTP.

Submitting checks everything that can be checked at once — options, the
webhook URL against the egress policy, the target URL, the monthly quota (a
credit is reserved now, so a used-up quota is an immediate 422), the plan's
``max_queued_jobs`` — and then stores the job and its Idempotency-Key in one
atomic step.  Whatever goes wrong after the credit was reserved gives it back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from ..capture.declaration import JOB
from ..capture.options import NON_OPTION_NAMES, CaptureOptions
from ..egress.errors import TargetUnreachable
from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver, check_target
from ..errors import (
    ConcurrencyLimited,
    InvalidUrl,
    JobNotCancelable,
    NotFound,
)
from ..limits.admission import Admission, LimitState
from ..log_context import REQUEST_ID
from ..state.base import KeyRecord
from .entry_check import EntryCheck
from .idempotency import check_replay, fingerprint
from .models import CANCELED, QUEUED, Job, new_job_id, now_utc
from .runner import JobRunner
from .store import JobStore

log = logging.getLogger("screenshot_service.jobs")

_JOB_ID = re.compile(r"^job_[0-9a-f]{24}$")
WEBHOOK_FIELD = "webhook_url"


class JobService:
    def __init__(
        self,
        store: JobStore,
        admission: Admission,
        runner: JobRunner,
        policy: EgressPolicy,
        resolver: Resolver,
        *,
        retention_seconds: float,
        proxy_pools: Collection[str] = (),
        on_batch_item: Callable[[str], None] = lambda outcome: None,
        baselines: Callable[[CaptureOptions, str], Awaitable[Any]] | None = None,
    ) -> None:
        self.on_batch_item = on_batch_item  # metrics: a batch's item ended (here: canceled alone)
        self.entry = EntryCheck(policy, resolver, proxy_pools, baselines)
        self.store = store
        self.admission = admission
        self.runner = runner
        self.policy = policy
        self.resolver = resolver
        self.retention_seconds = retention_seconds

    async def submit(
        self,
        key: KeyRecord,
        body: dict[str, Any],
        *,
        base_url: str,
        idempotency_key: str | None,
        limits: LimitState,
    ) -> tuple[Job, bool]:
        """(job, created): created is False for an Idempotency-Key replay."""
        plan = self.admission.plan_of(key)
        options, webhook_url, opts = parse_job_body(body)
        body_print = fingerprint(body)
        if idempotency_key is not None:
            existing = await self.store.by_idempotency_key(key.id, idempotency_key)
            if existing is not None:
                return check_replay(existing, body_print, idempotency_key), False
        if webhook_url is not None:
            await self.check_webhook(webhook_url)
        await self.entry.check(key.plan, plan, opts, account=key.id)
        # The credit waits for the job as long as the job may live: settled by the runner.
        reservation, _ = await self.admission.reserve(key, plan, limits, self.retention_seconds)
        job = Job(
            id=new_job_id(), key_id=key.id, status=QUEUED, options=options, webhook_url=webhook_url,
            base_url=base_url, created_at=now_utc(), reservation_id=reservation.id, period=reservation.period,
            idempotency_key=idempotency_key, fingerprint=body_print, request_id=REQUEST_ID.get(),
        )  # fmt: skip
        try:
            submitted = await self.store.create(job, max_active=plan.max_queued_jobs, ttl=self.retention_seconds)
        except BaseException:
            # Retried by the ledger if the store is away: never held for the job's whole lease.
            await self.admission.ledger.refund(reservation)
            raise
        if submitted.outcome != "created":
            await self.admission.ledger.refund(reservation)
        if submitted.outcome == "full":
            raise ConcurrencyLimited(
                f"plan '{key.plan}' allows {plan.max_queued_jobs} unfinished job(s) per key and "
                f"{submitted.active} are queued or running; retry when one finishes",
                retry_after=2,
                details={"plan": key.plan, "max_queued_jobs": plan.max_queued_jobs, "unfinished": submitted.active},
            )
        assert submitted.job is not None
        if submitted.outcome == "created":
            self.runner.on_state(QUEUED)
            log.info("job queued", extra={"job_id": job.id})
        if submitted.outcome == "existing":  # a concurrent request with the same key won the race
            assert idempotency_key is not None
            return check_replay(submitted.job, body_print, idempotency_key), False
        self.runner.wake()
        return submitted.job, True

    async def get(self, key: KeyRecord, job_id: str) -> Job:
        job = await self.store.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None or job.key_id != key.id:
            # Someone else's job is as invisible as a missing one: ids leak nothing.
            raise NotFound(f"no job {job_id!r} for this API key")
        return job

    async def cancel(self, key: KeyRecord, job_id: str) -> Job:
        now = now_utc()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored: to the millisecond
        job = await self.store.cancel(job_id, key.id, now) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"no job {job_id!r} for this API key")
        if job.status == CANCELED:
            if job.finished_at == now:  # canceled by this request, not a repeat: counted once
                self.runner.on_state(CANCELED)
                if job.batch_id is not None:
                    self.on_batch_item(CANCELED)
        else:
            raise JobNotCancelable(
                f"job {job_id} is {job.status}; only a queued job can be canceled",
                details={"job_id": job_id, "status": job.status},
            )
        # Idempotent: a repeated DELETE refunds nothing more, and if this request dies
        # right here, the worker that takes the canceled job off the queue refunds it.
        await self.admission.ledger.refund(job.reservation)
        self.runner.wake()
        return job

    async def check_webhook(self, url: str) -> None:
        await check_webhook_url(url, self.policy, self.resolver)


async def check_webhook_url(url: str, policy: EgressPolicy, resolver: Resolver) -> None:
    """A webhook URL judged by the egress policy when it is given (jobs, monitors)."""
    try:
        await check_target(url, policy, resolver, what=WEBHOOK_FIELD)
    except TargetUnreachable:
        # A 400 naming the field: the caller's URL is wrong, not our network.
        raise InvalidUrl(f"{WEBHOOK_FIELD} host does not resolve", details={"field": WEBHOOK_FIELD}) from None


def parse_job_body(body: dict[str, Any]) -> tuple[dict[str, Any], str | None, CaptureOptions]:
    """(stored options, webhook_url, validated options) from a POST /v1/jobs body.

    The whole body is validated as a job's (capture/option_table.py declares what jobs
    refuse); ``webhook_url`` is then left out of the stored options, which are exactly
    what the capture needs.  Its URL is judged by the egress policy at submit.
    """
    parsed = CaptureOptions.from_json(body, place=JOB)
    options = {k: v for k, v in body.items() if k not in NON_OPTION_NAMES and k != WEBHOOK_FIELD}
    return options, parsed.webhook_url, parsed
