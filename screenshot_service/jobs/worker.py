"""JobWorker: one claimed job, from its lease to its ack.

    capture (own 30 s deadline from now) -> finish (terminal status stored)
    -> slot freed -> settle the credit -> webhook -> ack

The claim's lease is renewed all along; only the ack takes the job off the
queue.  A process that dies anywhere in between leaves a lease that runs out,
and whoever claims the job next continues from what the record says: capture
again if it never finished, otherwise settle again (idempotent: commit or
refund happen once) and send the webhook if it is still pending.

A store or state error is not the job's fault and never costs it a run: every
round trip after the capture (finish, settle, webhook status, ack) is retried
here, with the lease still renewed, until it lands, the lease is lost to
another worker, or the process stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..browser.pool import JOBS
from ..capture.declaration import JOB
from ..capture.options import CaptureOptions
from ..capture.pipeline import CapturePipeline, Order
from ..capture.result import CaptureResult
from ..egress.urls import host_of
from ..error_map import as_api_error
from ..errors import ApiError, InternalError
from ..faults import LayerError
from ..limits.ledger import Ledger
from ..log_context import JOB_ID, REQUEST_ID, bound
from ..state.base import StateStore
from ..state.errors import StateUnavailable
from .capture_retries import Stopping, capture_with_retries
from .lease import give_back, kept_lease, uncancel_lost_lease
from .models import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    WEBHOOK_DELIVERED,
    WEBHOOK_FAILED,
    WEBHOOK_PENDING,
    Job,
    now_utc,
)
from .store import MAX_RUNS, JobStore
from .webhooks import WebhookSender

log = logging.getLogger("screenshot_service.jobs")

STORE_RETRY_FIRST = 0.1  # a failed store round trip after the capture is tried again this soon,
STORE_RETRY_MAX = 2.0  # ... doubling up to this, for as long as the job's lease is ours

T = TypeVar("T")


class JobWorker:
    def __init__(
        self,
        store: JobStore,
        state: StateStore,
        ledger: Ledger,
        pipeline: CapturePipeline,
        webhooks: WebhookSender,
        *,
        owner: str,
        retention_seconds: float,
        lease_seconds: float,
        stopping: Callable[[], bool],
        on_state: Callable[[str], None],
        store_failures: Counter[str],
        on_batch_item: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.store, self.state, self.ledger, self.pipeline, self.webhooks = store, state, ledger, pipeline, webhooks
        self.owner = owner
        self.retention_seconds = retention_seconds
        self.lease_seconds = lease_seconds
        self.stopping = stopping  # True once shutdown began: jobs go back to the queue, not fail
        self.on_state = on_state
        self.on_batch_item = on_batch_item  # a batch's item ended (metrics)
        self.store_failures = store_failures

    async def process(self, job: Job, captured: Callable[[], None]) -> None:
        """Runs ``job`` to its ack; ``captured`` is called once its capture is over and stored
        (the browser slot is free from then on)."""
        # Every record written for it names it and the request that submitted it (the webhook's too).
        with bound(JOB_ID, job.id), bound(REQUEST_ID, job.request_id or ""):
            await self._process(job, captured)

    async def _process(self, job: Job, captured: Callable[[], None]) -> None:
        try:
            async with kept_lease(self.store, job.id, self.owner, self.lease_seconds, self.store_failures) as lease:
                try:
                    if not job.finished:
                        finished = await self._run(job)
                        if finished is None:
                            return
                        job = finished
                    captured()
                    await self._settle(job)
                    await self._notify(job)
                    await self._notify_batch(job)
                    await self._stored("ack", job.id, lambda: self.store.ack(job.id, self.owner))
                except asyncio.CancelledError:
                    if lease.lost:
                        log.warning("job=%s: lease lost, another worker has it", job.id)
                        uncancel_lost_lease()
                        return
                    await give_back(self.store, job.id, self.owner)  # shutdown: the next start picks it up at once
                    raise
                except Stopping:
                    await give_back(self.store, job.id, self.owner)
        except LayerError as error:
            # The store or state is unavailable: the lease runs out and the job is retried.
            log.warning("job=%s: %s; it will be retried", job.id, error.message)
        except Exception:
            log.exception("job=%s: unexpected error; it will be retried when its lease runs out", job.id)

    async def _stored(self, step: str, job_id: str, call: Callable[[], Awaitable[T]]) -> T:
        """One store or state round trip the job needs, retried while the store is unavailable.

        It ends when the call lands, or by cancellation: the lease keeper's when another worker
        took the job, the runner's at shutdown.  A store error never fails, drops or re-runs a job.
        """
        pause = STORE_RETRY_FIRST
        failures = 0
        while True:
            try:
                value = await call()
            except StateUnavailable as error:
                failures += 1
                self.store_failures[step] += 1
                if failures == 1:
                    log.warning("job=%s: %s failed (%s); retrying while the lease is ours", job_id, step, error.message)
            else:
                if failures:
                    log.info("job=%s: %s done after %d failed attempt(s)", job_id, step, failures)
                return value
            await asyncio.sleep(pause)
            pause = min(pause * 2, STORE_RETRY_MAX)
    async def _run(self, job: Job) -> Job | None:
        """Capture and store the terminal state; None if the lease was lost meanwhile."""
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        self.on_state(RUNNING)
        try:
            if job.runs > MAX_RUNS:
                raise InternalError(f"the job was interrupted {job.runs - 1} times while running; not retrying")
            result = (await self._capture(job)).to_json()
        except ApiError as failure:
            error = failure.to_dict()["error"]
        except LayerError as failure:
            error = as_api_error(failure).to_dict()["error"]
        except (Stopping, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("job=%s: unexpected error", job.id)
            error = InternalError(f"internal error; quote job id {job.id}").to_dict()["error"]
        finished = job.with_changes(
            status=SUCCEEDED if error is None else FAILED, finished_at=now_utc(), result=result, error=error,
            options=None, webhook_status=WEBHOOK_PENDING if job.webhook_url else None,
        )  # fmt: skip
        stored = await self._stored(
            "finish", job.id, lambda: self.store.finish(finished, self.owner, self.retention_seconds)
        )
        if not stored:
            log.warning("job=%s: lease lost before it finished; another worker has it", job.id)
            return None
        self.on_state(finished.status)
        if job.batch_id is not None:
            self.on_batch_item(finished.status)
        log.info("job=%s key=%s host=%s %s", job.id, job.key_id, host_of((job.options or {}).get("url")), finished.status)
        return finished

    async def _capture(self, job: Job) -> CaptureResult:
        """Through the pipeline (the opt-in cache as for sync requests: a hit renders nothing and is
        refunded in _settle), retried on a crashed or busy browser (capture_retries.py)."""
        opts = CaptureOptions.from_json(job.options or {}, place=JOB)
        loop = asyncio.get_running_loop()
        # The deadline counts from each try: queued time is not the capture's.
        return await capture_with_retries(self.pipeline, lambda: Order(
            opts=opts, started=loop.time(), account=job.key_id, base_url=job.base_url, lane=JOBS, admit=False,
        ), self.stopping)

    async def _settle(self, job: Job) -> None:
        """Commit a fresh capture, refund anything else (failure, cancel, cache hit), through the
        ledger that settles sync captures; both are no-ops the second time."""
        delivered = job.status == SUCCEEDED and not (job.result or {}).get("cached")
        await self._stored("settle", job.id, lambda: self.ledger.settle(job.reservation, delivered=delivered))

    async def _notify(self, job: Job) -> None:
        if job.webhook_status != WEBHOOK_PENDING or not job.webhook_url:
            return
        secret = await self._stored("webhook", job.id, lambda: self._secret(job.key_id))
        if secret is None:
            log.warning("job=%s: its key is gone or revoked; webhook not sent", job.id)
            await self._stored("webhook", job.id, lambda: self.store.update_webhook(job.id, self.owner, WEBHOOK_FAILED, 0))
            return
        body = json.dumps(job.to_json(for_webhook=True)).encode()
        delivery = await self.webhooks.deliver(job.webhook_url, body, secret, job_id=job.id)
        status = WEBHOOK_DELIVERED if delivery.delivered else WEBHOOK_FAILED
        await self._stored(
            "webhook", job.id, lambda: self.store.update_webhook(job.id, self.owner, status, delivery.attempts)
        )

    async def _notify_batch(self, job: Job) -> None:
        """The batch's webhook, if this item is the one that claims it (batch_store.py): sent once,
        by the worker of an item that ended last; this job stays queued until it is settled."""
        batch_id, batches = job.batch_id, self.store.batches
        if batch_id is None:
            return
        batch = await self._stored("batch webhook", job.id, lambda: batches.claim_webhook(batch_id, job.id))
        if batch is None or not batch.webhook_url:
            return
        secret = await self._stored("batch webhook", job.id, lambda: self._secret(job.key_id))
        status, attempts = WEBHOOK_FAILED, 0
        if secret is None:
            log.warning("batch=%s: its key is gone or revoked; webhook not sent", batch_id)
        else:
            items = await self._stored("batch webhook", job.id, lambda: batches.items(batch))
            body = json.dumps(batch.to_json(items, for_webhook=True)).encode()
            delivery = await self.webhooks.deliver(batch.webhook_url, body, secret, job_id=batch_id)
            status = WEBHOOK_DELIVERED if delivery.delivered else WEBHOOK_FAILED
            attempts = delivery.attempts
        await self._stored(
            "batch webhook", job.id, lambda: batches.update_webhook(batch_id, job.id, status, attempts)
        )

    async def _secret(self, key_id: str) -> str | None:
        record = await self.state.key_by_id(key_id)
        return record.webhook_secret if record is not None and not record.revoked else None


