"""A lane's slots, handed to waiting keys fairly rather than first come, first served.

A freed slot goes to the waiting key with the fewest captures in flight; the key whose
capture just ended counts that capture as still running for this choice, so it never wins a
tie for the slot it freed (another key waiting as long gets its turn).  Ties go to the oldest
waiter.  A key's ``share`` (its plan's ``max_pool_share``) caps how many slots it may hold
while another key waits; when every waiting key is at its cap the slot still goes out by the
same rule, so no slot idles while anyone waits.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

from .errors import PoolError

ANONYMOUS = ""  # the holder of work without a key (the one-shot CLI, jobs)


@dataclass(eq=False)
class Waiter:
    holder: str
    share: float
    seq: int
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class FairSlots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self.in_flight: Counter[str] = Counter()
        self._waiters: list[Waiter] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def cap(self, share: float) -> int:
        """Slots a key of this share may hold while other keys wait (at least one)."""
        return max(1, math.floor(share * self.size + 1e-9))

    def enqueue(self, holder: str, share: float) -> Waiter:
        """Join the queue (or take a free slot at once: ``granted`` is then done)."""
        waiter = Waiter(holder, share, next(self._seq))
        self._waiters.append(waiter)
        self._grant(releaser=None)
        return waiter

    async def wait(self, waiter: Waiter) -> None:
        """Wait for ``waiter``'s slot; a cancelled or refused wait leaves the queue (and hands
        on a slot granted in the meantime)."""
        try:
            await waiter.granted
        except BaseException:
            self.withdraw(waiter)
            raise

    def withdraw(self, waiter: Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        elif waiter.granted.done() and not waiter.granted.cancelled() and waiter.granted.exception() is None:
            self.release(waiter.holder)  # granted, but its owner went away before using it

    def refuse(self, waiter: Waiter, error: PoolError) -> None:
        """Take ``waiter`` out of the queue, failing its wait with ``error``."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            if not waiter.granted.done():
                waiter.granted.set_exception(error)

    def release(self, holder: str) -> None:
        self.in_flight[holder] -= 1
        if self.in_flight[holder] <= 0:
            del self.in_flight[holder]
        self.free += 1
        self._grant(releaser=holder)

    def _grant(self, releaser: str | None) -> None:
        # A waiter whose task was cancelled (deadline, client gone) has its future cancelled at
        # once but leaves the queue only when its task runs again: never grant it a slot.
        self._waiters = [w for w in self._waiters if not w.granted.done()]
        while self.free and self._waiters:
            waiter = self._next(releaser)
            self._waiters.remove(waiter)
            self.free -= 1
            self.in_flight[waiter.holder] += 1
            waiter.granted.set_result(None)

    def _next(self, releaser: str | None) -> Waiter:
        holders = {w.holder for w in self._waiters}

        def capped(w: Waiter) -> bool:
            return len(holders) > 1 and self.in_flight[w.holder] >= self.cap(w.share)

        eligible = [w for w in self._waiters if not capped(w)] or self._waiters
        return min(eligible, key=lambda w: (self.in_flight[w.holder] + (w.holder == releaser), w.seq))
