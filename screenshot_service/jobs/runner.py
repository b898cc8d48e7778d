"""JobRunner: the dispatcher that takes jobs off the queue and hands each to a worker.

One dispatcher per process claims jobs while fewer than ``jobs.workers`` are
capturing, so jobs never hold more browser slots than that and the rest of the
pool stays free for sync requests.  Each job runs in its own task (worker.py
says what one job goes through).  Only a claim counts a run (``runs``, bounded
by MAX_RUNS for jobs that keep killing their process), and a runner re-claiming
a job it already held (its lease ran out while the store was down, or a claim's
answer was lost) counts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable

from ..capture.pipeline import CapturePipeline
from ..faults import LayerError
from ..limits.ledger import Ledger
from ..state.base import StateStore
from .lease import give_back
from .models import RUNNING, Job
from .outlast import Interrupted, outlast_cancellation
from .store import JobStore
from .webhooks import WebhookSender
from .worker import JobWorker

log = logging.getLogger("screenshot_service.jobs")


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
        on_wait: Callable[[float], None] = lambda seconds: None,
        on_batch_item: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.on_state = on_state  # counts job state changes (metrics)
        self.on_wait = on_wait  # seconds from a job's submission to its first claim (metrics)
        self.store = store
        self.workers = workers
        self.accepting = accepting  # False while the app drains: claim nothing new
        self.lease_seconds = lease_seconds  # renewed every third of it; a dead owner's jobs wait this long
        self.poll_interval = poll_interval  # other instances' submissions are seen this fast
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._slots = asyncio.Semaphore(max(workers, 1))
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadline: float | None = None  # loop time the drain ends: one deadline for the whole shutdown
        self._cutoff: asyncio.TimerHandle | None = None
        self._claim_failing = False
        self._claim_token = ""  # kept while a claim's answer may have been lost: its repeat is the same claim
        self._held: set[str] = set()  # ids of the jobs this runner's tasks are working on
        self.store_failures: Counter[str] = Counter()  # failed store round trips by step (metrics, tests)
        self.worker = JobWorker(
            store, state, ledger, pipeline, webhooks, owner=self.owner, retention_seconds=retention_seconds,
            lease_seconds=lease_seconds, stopping=lambda: self._deadline is not None, on_state=on_state,
            store_failures=self.store_failures, on_batch_item=on_batch_item,
        )  # fmt: skip

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
        self._deadline = loop.time() + drain_seconds
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        self._cutoff = loop.call_at(self._deadline, self._cut_off)

    def _cut_off(self) -> None:
        for task in list(self._tasks):
            task.cancel()  # its worker gives the job back to the queue

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
            if job.status == RUNNING and job.runs == 1 and job.started_at is not None:
                self.on_wait((job.started_at - job.created_at).total_seconds())
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
                except LayerError as error:  # the store is down: keep polling, jobs are safe in it
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
            # Stopped while the claim was in flight: a job it leased us goes straight back, unless
            # our own task still works on it (the claim only renewed that lease).
            if isinstance(stopping.result, Job) and stopping.result.id not in self._held:
                await give_back(self.store, stopping.result.id, self.owner)
            raise

    async def _process(self, job: Job) -> None:
        holding_slot = True

        def free_slot() -> None:
            nonlocal holding_slot
            if holding_slot:
                holding_slot = False
                self._slots.release()

        try:
            await self.worker.process(job, captured=free_slot)
        finally:
            self._held.discard(job.id)
            free_slot()
