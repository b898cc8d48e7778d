"""BatchStore: batch records beside the job queue, one Protocol for SQLite and Redis.

A batch and its item jobs are created in one atomic step (one transaction, one
script), so a crash never leaves half a batch.  The batch's webhook is sent by
the worker of whichever item ends last: it *claims* the webhook, which succeeds
only once every item has ended and no other item's worker claimed it first, so
it is sent once however many workers end items at the same moment.  The
claiming item stays in the job queue until the webhook is settled, so a
process that dies meanwhile leaves it to the next worker (the job's lease runs
out), and a restart still sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from .batch_models import Batch, BatchSubmitted
from .models import Job


class BatchStore(Protocol):
    async def create(self, batch: Batch, jobs: Sequence[Job], *, max_active: int, ttl: float) -> BatchSubmitted:
        """Store the batch and enqueue its jobs at once, unless its Idempotency-Key names an
        existing batch ("existing") or the key's unfinished jobs plus these would exceed
        ``max_active`` ("full": nothing stored)."""
        ...

    async def get(self, batch_id: str) -> Batch | None: ...

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Batch | None: ...

    async def items(self, batch: Batch) -> list[Job | None]:
        """The item jobs in the batch's order (None for one whose record expired)."""
        ...

    async def cancel(self, batch_id: str, key_id: str, finished_at: datetime) -> list[Job] | None:
        """Cancel every still-queued item at once; the jobs this call canceled (None: no such
        batch for this key).  They stay in the queue, so a worker refunds them regardless."""
        ...

    async def claim_webhook(self, batch_id: str, job_id: str) -> Batch | None:
        """The batch, if its webhook is pending, every item has ended, and no other item's
        worker claimed it (the claim is then ``job_id``'s: repeatable by that job only)."""
        ...

    async def update_webhook(self, batch_id: str, job_id: str, status: str, attempts: int) -> None:
        """Record the delivery's outcome (only the claiming job's worker may)."""
        ...
