"""The pool's places, slots and queue bound: who may wait for a browser context, and who gets 503.

* ``pool_size`` sync slots; at most ``max_queue`` callers wait for one, and
  anyone beyond that gets 503 ``overloaded`` at once: requests never pile up
  into timeouts.
* A request may hold a *place* (a slot or a queue position) for its whole life
  (``place()``), so a burst is refused at once and in full, before any auth or
  credit work.
* The jobs lane has its own slots; the job runner bounds how many wait there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from .errors import BrowserUnavailable, Overloaded

SYNC = "sync"
JOBS = "jobs"


class Admission:
    def __init__(self, pool_size: int, max_queue: int, job_slots: int = 0) -> None:
        self.pool_size = pool_size
        self.max_queue = max_queue
        self.job_slots = job_slots  # 0: jobs share the sync lane's slots
        self._slots = {SYNC: asyncio.Semaphore(pool_size), JOBS: asyncio.Semaphore(max(job_slots, 1))}
        self.in_use = {SYNC: 0, JOBS: 0}
        self.waiting = 0  # sync callers waiting for a slot
        self._places = 0  # requests holding a place() from arrival to answer
        self.draining = False

    def lane(self, wanted: str) -> str:
        """The lane a lease of ``wanted`` really uses (jobs share the sync one without a lane of their own)."""
        return SYNC if wanted == JOBS and not self.job_slots else wanted

    @contextlib.contextmanager
    def place(self) -> Iterator[None]:
        """Hold one of the pool's places (``pool_size`` slots + ``max_queue``) for a whole request."""
        self.check_capacity()
        if self._places >= self.pool_size + self.max_queue:
            raise Overloaded(
                f"all {self.pool_size} browser slots and {self.max_queue} queue places are taken",
                retry_after=1,
                details={"pool_size": self.pool_size, "max_queue": self.max_queue},
            )
        self._places += 1
        try:
            yield
        finally:
            self._places -= 1

    def check_capacity(self) -> None:
        """Raise 503 now if a sync lease would be refused."""
        if self.draining:
            raise BrowserUnavailable("the service is shutting down", retry_after=5)
        if self._slots[SYNC].locked() and self.waiting >= self.max_queue:
            raise Overloaded(
                f"all {self.pool_size} browser slots are busy and {self.waiting} requests are waiting",
                retry_after=1,
                details={"pool_size": self.pool_size, "queued": self.waiting},
            )

    async def acquire(self, lane: str) -> None:
        if lane == SYNC:
            self.check_capacity()
            self.waiting += 1
            try:
                await self._slots[SYNC].acquire()
            finally:
                self.waiting -= 1
        else:
            if self.draining:
                raise BrowserUnavailable("the service is shutting down", retry_after=5)
            await self._slots[lane].acquire()
        self.in_use[lane] += 1

    def release(self, lane: str) -> None:
        self.in_use[lane] -= 1
        self._slots[lane].release()

    @property
    def busy(self) -> int:
        return self.in_use[SYNC] + self.in_use[JOBS]
