"""A claimed job's lease: renewed while a task works on the job, given back when it stops.

Whoever holds the lease owns the job; a lease that runs out (its owner died, or the store
was down for longer than the lease) lets another worker claim the job and continue it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from ..state.errors import StateError
from .outlast import Interrupted, outlast_cancellation
from .store import JobStore

log = logging.getLogger("screenshot_service.jobs")


class Lease:
    lost = False  # another worker has the job now: the task working on it was cancelled for that


@contextlib.asynccontextmanager
async def kept_lease(
    store: JobStore, job_id: str, owner: str, lease_seconds: float, failures: Counter[str]
) -> AsyncIterator[Lease]:
    """Renews the lease every third of it for as long as the block runs; once the store says
    it is no longer ours, marks it lost and cancels the task running the block."""
    lease = Lease()
    task = asyncio.current_task()
    assert task is not None

    async def keep() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                if not await store.renew(job_id, owner, lease_seconds):
                    lease.lost = True
                    task.cancel()
                    return
            except StateError as error:
                failures["renew"] += 1
                log.warning("job=%s: renewing its lease failed: %s", job_id, error.message)

    keeper = asyncio.create_task(keep())
    try:
        yield lease
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


def uncancel_lost_lease() -> None:
    # The cancel came from our own lease keeper, not from whoever owns the task.
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def give_back(store: JobStore, job_id: str, owner: str) -> None:
    """Releases the job to the queue now rather than when its lease runs out."""
    # Cancelled again meanwhile (stop() after the cut-off), it still waits for the release:
    # the store closes once this task has ended.
    try:
        await outlast_cancellation(store.release(job_id, owner))
    except StateError as error:
        _could_not_give_back(job_id, error)
    except Interrupted as stopping:
        if isinstance(stopping.error, StateError):
            _could_not_give_back(job_id, stopping.error)
        raise


def _could_not_give_back(job_id: str, error: StateError) -> None:
    log.warning("job=%s: could not give it back (%s); its lease will run out", job_id, error.message)
