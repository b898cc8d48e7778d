"""The pool's places, slots and queue bound: who may wait for a browser context, and who gets 503.

* ``pool_size`` sync slots; at most ``max_queue`` callers wait for one, and
  anyone beyond that gets 503 ``overloaded`` at once: requests never pile up
  into timeouts.
* A request holds a *place* (a slot or a queue position) for its whole life
  (``place()``), taken in its key's name.  The places are shared fairly
  (README, Fair share of the pool): when all are taken, a request of a key
  under its fair share takes the newest queued place of the key holding the
  most, whose request is answered 503 at once; a request of a key at or above
  its share is refused itself.  Places taken without a key (the one-shot
  CLI, tests holding the pool) are nobody's to take.
* Slots go to the waiting key with the fewest captures in flight (fair_slots.py).
* The jobs lane has its own slots; the job runner bounds how many wait there.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import BrowserUnavailable, Overloaded
from .fair_slots import ANONYMOUS, FairSlots, Waiter

SYNC = "sync"
JOBS = "jobs"


@dataclass(eq=False)
class Place:
    """One request's place in the pool: a slot once it has one, else a queue position."""

    holder: str  # the API key's id
    share: float  # the key's plan's max_pool_share
    seq: int
    in_slot: bool = False
    waiter: Waiter | None = None
    evicted: bool = False

    @property
    def queued(self) -> bool:
        """Not yet given a slot (a slot granted but not yet taken up counts as given)."""
        return not self.in_slot and not (self.waiter is not None and self.waiter.granted.done())


# The place of the request this task serves: a lease taken inside it is the key's.
_current: contextvars.ContextVar[Place | None] = contextvars.ContextVar("pool_place", default=None)


class Admission:
    def __init__(self, pool_size: int, max_queue: int, job_slots: int = 0) -> None:
        self.pool_size = pool_size
        self.max_queue = max_queue
        self.job_slots = job_slots  # 0: jobs share the sync lane's slots
        self._slots = {SYNC: FairSlots(pool_size), JOBS: FairSlots(max(job_slots, 1))}
        self._places: dict[str, list[Place]] = {}  # by key, oldest first
        self._seq = itertools.count()
        self.draining = False
        # Told how long each wait for a sync slot lasted, granted or not (queue metrics).
        self.on_sync_wait: Callable[[float], None] | None = None

    def lane(self, wanted: str) -> str:
        """The lane a lease of ``wanted`` really uses (jobs share the sync one without a lane of their own)."""
        return SYNC if wanted == JOBS and not self.job_slots else wanted

    @property
    def in_use(self) -> dict[str, int]:
        return {lane: slots.size - slots.free for lane, slots in self._slots.items()}

    @property
    def waiting(self) -> int:
        """Sync callers waiting for a slot."""
        return self._slots[SYNC].waiting

    @property
    def busy(self) -> int:
        return sum(self.in_use.values())

    @property
    def places(self) -> int:
        return sum(len(held) for held in self._places.values())

    def held_by(self, holder: str) -> int:
        """Places (in flight and queued) the key holds."""
        return len(self._places.get(holder, ()))

    # -- places ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def place(self, holder: str = ANONYMOUS, share: float = 1.0) -> Iterator[Place]:
        """Hold one of the pool's places (``pool_size`` slots + ``max_queue``) for a whole request."""
        self.check_capacity()
        if self.places >= self.pool_size + self.max_queue:
            victim = self._victim_for(holder)
            if victim is None:
                raise self._full()
            self._evict(victim)
        place = Place(holder, share, next(self._seq))
        self._places.setdefault(holder, []).append(place)
        token = _current.set(place)
        try:
            yield place
        finally:
            _current.reset(token)
            self._forget(place)

    def shed_if_full(self) -> None:
        """503 now, before the caller is known, if no request could get a place: all are taken
        and no key holds enough to yield one to a key holding none."""
        self.check_capacity()
        if self.places >= self.pool_size + self.max_queue and self._victim_for(None) is None:
            raise self._full()

    def _victim_for(self, holder: str | None) -> Place | None:
        """For a request of ``holder`` (None: a key holding nothing) under its fair share — the
        keyed places over the keys holding any, itself included — the newest queued place of
        the key holding the most (in flight + queued; ties: the newest place), if that key holds
        more than ``holder``.  Keys at or above their share take nothing from each other, so a
        flood's retries cannot make the queue churn."""
        if holder == ANONYMOUS:
            return None
        held = self.held_by(holder) if holder is not None else 0
        others = {key for key in self._places if key not in (ANONYMOUS, holder)}
        keyed = self.places - self.held_by(ANONYMOUS)
        if held * (len(others) + 1) >= keyed:  # held >= keyed / keys, without rounding
            return None
        best: Place | None = None
        for key, places in self._places.items():
            if key in (ANONYMOUS, holder) or len(places) <= held:
                continue
            newest = next((p for p in reversed(places) if p.queued), None)
            if newest and (best is None or (len(places), newest.seq) > (self.held_by(best.holder), best.seq)):
                best = newest
        return best

    def _evict(self, place: Place) -> None:
        self._forget(place)
        place.evicted = True
        if place.waiter is not None:
            self._slots[SYNC].refuse(place.waiter, self._evicted())

    def _forget(self, place: Place) -> None:
        held = self._places.get(place.holder, [])
        if place in held:
            held.remove(place)
            if not held:
                del self._places[place.holder]

    def _full(self) -> Overloaded:
        return Overloaded(
            f"all {self.pool_size} browser slots and {self.max_queue} queue places are taken",
            retry_after=1,
            details={"pool_size": self.pool_size, "max_queue": self.max_queue},
        )

    def _evicted(self) -> Overloaded:
        return Overloaded(
            "the queue is full and this key holds the most places: its newest queued request "
            "gave way to a key holding fewer",
            retry_after=1,
            details={"pool_size": self.pool_size, "max_queue": self.max_queue, "reason": "fair_share"},
        )

    def check_capacity(self) -> None:
        """Raise 503 now if the pool is shutting down."""
        if self.draining:
            raise BrowserUnavailable("the service is shutting down", retry_after=5)

    # -- slots ----------------------------------------------------------------------------
    async def acquire(self, lane: str) -> Place | None:
        """A slot of ``lane``, in the name of the current request's place (returned; None
        without one); give it back with ``release(lane, place)``."""
        self.check_capacity()
        place = _current.get() if lane == SYNC else None
        if place is not None and place.evicted:
            raise self._evicted()
        slots = self._slots[lane]
        if place is None and lane == SYNC and not slots.free and slots.waiting >= self.max_queue:
            raise Overloaded(
                f"all {self.pool_size} browser slots are busy and {slots.waiting} requests are waiting",
                retry_after=1,
                details={"pool_size": self.pool_size, "queued": slots.waiting},
            )
        waiter = slots.enqueue(place.holder if place else ANONYMOUS, place.share if place else 1.0)
        if place is not None:
            place.waiter = waiter
        began = time.monotonic()
        try:
            await slots.wait(waiter)
        finally:
            if place is not None:
                place.waiter = None
            if lane == SYNC and self.on_sync_wait is not None:
                self.on_sync_wait(time.monotonic() - began)
        if place is not None:
            place.in_slot = True
        return place

    def release(self, lane: str, place: Place | None) -> None:
        if place is not None:
            place.in_slot = False
        self._slots[lane].release(place.holder if place else ANONYMOUS)
