"""JobStore: the durable queue and job records, one Protocol for SQLite and Redis.

The queue is "jobs that still need a worker": a queued job to capture, and a
finished job whose credit must be settled or whose webhook must be sent.  A
worker *claims* a job with a lease; it keeps the lease alive while it works and
*acks* it when nothing is left to do.  A lease that runs out (its process died)
hands the job to the next claim, so an accepted job is never lost, and because
settling a credit is idempotent a job is still charged at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from .batch_store import BatchStore
from .models import Job

# A job whose capture was started this many times without finishing (each time
# its process died) is failed instead of being retried forever.
MAX_RUNS = 3


@dataclass(frozen=True)
class Submitted:
    """What ``JobStore.create`` did."""

    outcome: Literal["created", "existing", "full"]
    job: Job | None = None  # the new job, or the earlier one with the same Idempotency-Key
    active: int = 0  # with "full": how many unfinished jobs the key has


class JobStore(Protocol):
    @property
    def batches(self) -> BatchStore:
        """Batch records beside the queue, on the same connection (batch_store.py)."""
        ...

    async def create(self, job: Job, *, max_active: int, ttl: float) -> Submitted:
        """Store and enqueue ``job`` atomically, unless the key's Idempotency-Key names an
        existing job ("existing") or the key already has ``max_active`` unfinished jobs ("full").
        ``ttl``: seconds the record lives (refreshed when it finishes)."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Job | None: ...

    async def claim(self, owner: str, lease: float, token: str = "") -> Job | None:
        """The next job needing work, leased to ``owner`` for ``lease`` seconds.

        Jobs whose lease ran out come first, then the queue in order.  A queued (or
        interrupted running) job comes back ``running``, its ``runs`` counted and
        ``started_at`` set; a finished job comes back as it is (settle, webhook, ack).
        No run is counted when ``owner`` held the lease already.

        ``token`` makes a claim repeatable: a claim whose answer was lost (the store
        timed out, yet did it) is repeated with the same token and returns the job
        that claim took, still ``owner``'s, instead of taking another.
        """
        ...

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        """Extend the lease; False when ``owner`` lost it (the job went to someone else)."""
        ...

    async def finish(self, job: Job, owner: str, ttl: float) -> bool:
        """Write the terminal status, result/error, finished_at and webhook status, drop
        the options, and keep the record ``ttl`` more seconds. False if the lease was lost."""
        ...

    async def update_webhook(self, job_id: str, owner: str, status: str, attempts: int) -> None: ...

    async def ack(self, job_id: str, owner: str) -> None:
        """Nothing left to do: the job leaves the queue (its record stays until it expires)."""
        ...

    async def release(self, job_id: str, owner: str) -> None:
        """Give the job back (shutdown): first in line again; a running job is queued again."""
        ...

    async def cancel(self, job_id: str, key_id: str, finished_at: datetime) -> Job | None:
        """Cancel if still queued; the job as it is afterwards (None: unknown or not this key's).

        A canceled job stays in the queue so a worker settles (refunds) it even if the
        canceling request dies before it could."""
        ...

    async def queued(self) -> int:
        """How many jobs wait in the queue for a worker to claim them (claimed ones not counted;
        a canceled one until a worker has settled it).  Cheap: read at every metrics scrape."""
        ...

    async def sweep(self) -> int:
        """Delete expired records; how many went (Redis expires them by itself: 0)."""
        ...

    async def close(self) -> None: ...
