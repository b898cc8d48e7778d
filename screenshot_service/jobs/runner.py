"""JobRunner: the workers that take jobs off the queue and run them.

One dispatcher per process claims jobs while fewer than ``jobs.workers`` are
capturing, so jobs never hold more browser slots than that and the rest of the
pool stays free for sync requests.  Each job runs in its own task:

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
another worker, or the process stops.  Only a claim counts a run (``runs``,
bounded by MAX_RUNS for jobs that keep killing their process), and a runner
re-claiming a job it already held (its lease ran out while the store was down,
or a claim's answer was lost) counts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..browser.errors import BrowserUnavailable, Overloaded
from ..browser.pool import JOBS
from ..capture.options import CaptureOptions
from ..capture.pipeline import CapturePipeline, Order
from ..capture.service import CaptureResult
from ..error_map import as_api_error
from ..errors import ApiError, InternalError
from ..faults import LayerError
from ..limits.ledger import Ledger
from ..state.base import StateStore
from ..state.errors import StateError, StateUnavailable
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
from .outlast import Interrupted, outlast_cancellation
from .store import MAX_RUNS, JobStore
from .webhooks import WebhookSender

log = logging.getLogger("screenshot_service.jobs")

BROWSER_RETRIES = 2  # a browser crash under a job is retried this often before the job fails
OVERLOADED_PAUSE = 0.25  # the pool's queue is full of sync requests: they go first, try again shortly
OVERLOADED_RETRIES = 240  # ... for at most a minute; then the job fails like a sync request would
STORE_RETRY_FIRST = 0.1  # a failed store round trip after the capture is tried again this soon,
STORE_RETRY_MAX = 2.0  # ... doubling up to this, for as long as the job's lease is ours

T = TypeVar("T")


class _GiveBack(Exception):
    """The process is stopping: put the job back rather than fail it."""


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        state: StateStore,
        ledger: Ledger,
        pipeline: CapturePipeline,
        webhooks: WebhookSender,
        *,
        workers: int,
        retention_seconds: float,
        accepting: Callable[[], bool] = lambda: True,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        on_state: Callable[[str], None] = lambda state: None,
    ) -> None:
        self.on_state = on_state  # counts job state changes (metrics)
        self.store, self.state, self.ledger, self.pipeline, self.webhooks = store, state, ledger, pipeline, webhooks
        self.workers = workers
        self.retention_seconds = retention_seconds
        self.accepting = accepting  # False while the app drains: claim nothing new
        self.lease_seconds = lease_seconds  # renewed every third of it; a dead owner's jobs wait this long
        self.poll_interval = poll_interval  # other instances' submissions are seen this fast
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._slots = asyncio.Semaphore(max(workers, 1))
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._deadline: float | None = None  # loop time the drain ends: one deadline for the whole shutdown
        self._cutoff: asyncio.TimerHandle | None = None
        self._claim_failing = False
        self._claim_token = ""  # kept while a claim's answer may have been lost: its repeat is the same claim
        self._held: set[str] = set()  # ids of the jobs this runner's tasks are working on
        self.running = 0  # jobs capturing right now (metrics, tests)
        self.completed = 0  # jobs finished by this process
        self.store_failures: Counter[str] = Counter()  # failed store round trips by step (metrics, tests)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.workers > 0 and self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="jobs-dispatcher")

    def wake(self) -> None:
        """A job was submitted or canceled here: look at the queue now, not at the next poll."""
        self._wake.set()

    def begin_stop(self, drain_seconds: float) -> None:
        """Shutdown starts now: claim nothing more, and give back whatever is still running
        ``drain_seconds`` from now.  Called when the app starts draining (install.py), so the
        jobs' drain runs alongside the sync captures' one instead of after it; again: no-op."""
        if self._deadline is not None:
            return
        loop = asyncio.get_running_loop()
        self._stopping = True
        self._deadline = loop.time() + drain_seconds
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        self._cutoff = loop.call_at(self._deadline, self._cut_off)

    def _cut_off(self) -> None:
        for task in list(self._tasks):
            task.cancel()  # _process gives the job back to the queue

    async def stop(self, drain_seconds: float) -> None:
        """Claim nothing more; let jobs in flight finish by the drain deadline; give back the rest.

        The deadline is the one ``begin_stop`` set when draining began, if it did: the whole
        shutdown takes ``drain_seconds``, not that once per waiting step."""
        self.begin_stop(drain_seconds)
        assert self._deadline is not None
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        remaining = self._deadline - asyncio.get_running_loop().time()
        if self._tasks and remaining > 0:
            await asyncio.wait(self._tasks, timeout=remaining)
        for task in self._tasks:
            if not task.cancelling():  # the cut-off's cancel is being handled: the job is going back
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._cutoff is not None:
            self._cutoff.cancel()

    # -- claiming -------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                job = await self._next()
            except BaseException:
                self._slots.release()
                raise
            if job.id in self._held:
                # Our own task still has it (its lease ran out while the store was down): the
                # claim only renewed that lease, and counted no run.
                self._slots.release()
                continue
            self._held.add(job.id)
            task = asyncio.create_task(self._process(job), name=f"job-{job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next(self) -> Job:
        while True:
            self._wake.clear()
            job = None
            if self.accepting():
                try:
                    # Kept if this raises: the store may have taken a job for us all the same.
                    self._claim_token = self._claim_token or secrets.token_hex(8)
                    job = await self._claim()
                    self._claim_token = ""
                    if self._claim_failing:
                        log.info("claiming jobs works again")
                    self._claim_failing = False
                except (ApiError, LayerError) as error:  # the store is down: keep polling, jobs are safe in it
                    self.store_failures["claim"] += 1
                    if not self._claim_failing:  # once per outage, not twice a second
                        log.warning("claiming a job failed: %s", error.message)
                    self._claim_failing = True
                except Exception:  # a bug must not silently stop every job on this instance
                    log.exception("claiming a job failed")
            if job is not None:
                return job
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()

    async def _claim(self) -> Job | None:
        try:
            return await outlast_cancellation(self.store.claim(self.owner, self.lease_seconds, self._claim_token))
        except Interrupted as stopping:
            # Stopped while the claim was in flight: a job it leased us goes straight back.
            if isinstance(stopping.result, Job):
                await self._give_back(stopping.result.id)
            raise

    # -- one job --------------------------------------------------------------------------------
    async def _process(self, job: Job) -> None:
        holding_slot = True
        try:
            async with self._leased(job.id) as lease:
                try:
                    if not job.finished:
                        finished = await self._run(job)
                        if finished is None:
                            return
                        job = finished
                    self._slots.release()
                    holding_slot = False
                    await self._settle(job)
                    await self._notify(job)
                    await self._stored("ack", job.id, lambda: self.store.ack(job.id, self.owner))
                except asyncio.CancelledError:
                    if lease.lost:
                        log.warning("job=%s: lease lost, another worker has it", job.id)
                        _uncancel()
                        return
                    await self._give_back(job.id)  # shutdown: the next start picks it up at once
                    raise
                except _GiveBack:
                    await self._give_back(job.id)
        except (ApiError, LayerError) as error:
            # The store or state is unavailable: the lease runs out and the job is retried.
            log.warning("job=%s: %s; it will be retried", job.id, error.message)
        except Exception:
            log.exception("job=%s: unexpected error; it will be retried when its lease runs out", job.id)
        finally:
            self._held.discard(job.id)
            if holding_slot:
                self._slots.release()

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
        self.running += 1
        self.on_state(RUNNING)
        try:
            if job.runs > MAX_RUNS:
                raise InternalError(f"the job was interrupted {job.runs - 1} times while running; not retrying")
            result = (await self._capture(job)).to_json()
        except ApiError as failure:
            error = failure.to_dict()["error"]
        except LayerError as failure:
            error = as_api_error(failure).to_dict()["error"]
        except (_GiveBack, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("job=%s: unexpected error", job.id)
            error = InternalError(f"internal error; quote job id {job.id}").to_dict()["error"]
        finally:
            self.running -= 1
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
        self.completed += 1
        self.on_state(finished.status)
        log.info("job=%s key=%s host=%s %s", job.id, job.key_id, _host(job), finished.status)
        return finished

    async def _capture(self, job: Job) -> CaptureResult:
        """Through the pipeline (the opt-in cache as for sync requests: a hit renders nothing and is
        refunded in _settle), retried on a crashed or busy browser."""
        opts = CaptureOptions.from_json(job.options or {})
        loop = asyncio.get_running_loop()
        failures = busy = 0
        while True:
            if self._stopping:
                raise _GiveBack
            try:
                # The deadline counts from now: queued time is not the capture's.
                return await self.pipeline.run(Order(
                    opts=opts, started=loop.time(), account=job.key_id, base_url=job.base_url, lane=JOBS, admit=False,
                ))
            except Overloaded:
                busy += 1
                if busy > OVERLOADED_RETRIES:
                    raise
                await asyncio.sleep(OVERLOADED_PAUSE)
            except BrowserUnavailable:
                if self._stopping:
                    raise _GiveBack from None
                failures += 1
                if failures > BROWSER_RETRIES:
                    raise
                await asyncio.sleep(failures)

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

    async def _secret(self, key_id: str) -> str | None:
        lookup = getattr(self.state, "key_by_id", None)  # cheaper when the store offers it
        if lookup is not None:
            record = await lookup(key_id)
        else:
            record = next((k for k in await self.state.list_keys() if k.id == key_id), None)
        return record.webhook_secret if record is not None and not record.revoked else None

    async def _give_back(self, job_id: str) -> None:
        # Cancelled again meanwhile (stop() after the cut-off), it still waits for the release:
        # the store closes once this task has ended.
        try:
            await outlast_cancellation(self.store.release(job_id, self.owner))
        except StateError as error:
            _could_not_give_back(job_id, error)
        except Interrupted as stopping:
            if isinstance(stopping.error, StateError):
                _could_not_give_back(job_id, stopping.error)
            raise

    @contextlib.asynccontextmanager
    async def _leased(self, job_id: str) -> AsyncIterator[_Lease]:
        lease = _Lease()
        task = asyncio.current_task()
        assert task is not None

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                try:
                    if not await self.store.renew(job_id, self.owner, self.lease_seconds):
                        lease.lost = True
                        task.cancel()
                        return
                except StateError as error:
                    self.store_failures["renew"] += 1
                    log.warning("job=%s: renewing its lease failed: %s", job_id, error.message)

        keeper = asyncio.create_task(keep())
        try:
            yield lease
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


class _Lease:
    lost = False


def _uncancel() -> None:
    # The cancel came from our own lease keeper, not from whoever owns the task.
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _could_not_give_back(job_id: str, error: StateError) -> None:
    log.warning("job=%s: could not give it back (%s); its lease will run out", job_id, error.message)


def _host(job: Job) -> str:
    # Logs name the target host, never the full URL (SPEC §7 privacy).
    url = (job.options or {}).get("url")
    return (urlsplit(url).hostname or "") if isinstance(url, str) else ""
