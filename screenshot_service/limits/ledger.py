"""The ledger: every reserved credit ends committed (delivered) or refunded, exactly once.

The rule (README, The ledger):

* A reservation is a lease (store clock).  A capture is *delivered* only once
  its commit is acknowledged by the store while the lease runs; the caller
  gives up waiting when the lease would have run out (``Ticket.give_up_at``:
  counted from when the reservation's answer arrived, so never before the
  store's own cut-off), and the store refuses a commit that arrives later.
* A commit that was not acknowledged means *not delivered*: the caller answers
  503, and the credit is refunded, overruling the commit in case it landed
  unseen.  Refunds that cannot reach the store are retried here until they do.
* A reservation whose owner died (process killed) is refunded by the reclaim
  sweep once its lease has run out.

What remains is one narrow window, documented in README: a store that executes
a commit and then freezes before answering, while this process dies before its
retried refund lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..state.base import Reservation, Reserved, ReservedMany, StateStore
from ..state.errors import StateError, StateUnavailable

log = logging.getLogger("screenshot_service.ledger")

RETRY_INTERVAL = 1.0  # seconds between attempts at refunds the store did not take
SWEEP_INTERVAL = 5.0  # seconds between reclaim sweeps of run-out leases

COMMITTED, REFUNDED, RECLAIMED = "committed", "refunded", "reclaimed"
OUTCOMES = (COMMITTED, REFUNDED, RECLAIMED)


@dataclass
class _Refund:
    reservation: Reservation
    overrule_commit: bool


class Ledger:
    def __init__(self, state: StateStore, *, on_settled: Callable[[str, int], None] = lambda outcome, n: None) -> None:
        self.state = state
        self.on_settled = on_settled  # metrics: (outcome, count)
        self._pending: dict[str, _Refund] = {}  # refunds not yet acknowledged, by reservation id
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[None]] = set()  # refunds and slot releases sent, not yet answered

    async def reserve(self, key_id: str, period: str, limit: int, lease_seconds: float) -> tuple[Reserved, float]:
        """The store's answer, and the loop time by which a commit must be acknowledged."""
        reserved = await self.state.reserve_credit(key_id, period, limit, lease_seconds)
        return reserved, asyncio.get_running_loop().time() + lease_seconds

    async def reserve_many(self, key_id: str, period: str, limit: int, count: int, lease_seconds: float) -> ReservedMany:
        """``count`` credits in one atomic step, or none (a batch); each settles like any other."""
        return await self.state.reserve_credits(key_id, period, limit, count, lease_seconds)

    async def commit(self, reservation: Reservation, give_up_at: float) -> bool:
        """True once the store acknowledged the commit in time; False means not delivered
        (the caller refunds with ``overrule_commit``)."""
        remaining = give_up_at - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        try:
            return await asyncio.wait_for(self._commit(reservation), remaining)
        except (TimeoutError, StateError) as exc:
            log.warning("commit of reservation %s not acknowledged (%s): refunding", reservation.id,
                        exc.message if isinstance(exc, StateError) else "timed out")
            return False

    async def settle(self, reservation: Reservation, *, delivered: bool) -> None:
        """Commit a delivered capture, refund anything else, for a caller whose own durable
        record says which (a finished job): a repeat changes nothing.  Raises StateUnavailable
        when the store did not answer; the caller tries again while its record waits."""
        if delivered:
            await self._commit(reservation)
        else:
            await self._refund(_Refund(reservation, overrule_commit=False))

    async def _commit(self, reservation: Reservation) -> bool:
        committed = await self.state.commit_credit(reservation)
        if committed:
            self.on_settled(COMMITTED, 1)
        return committed

    async def refund(self, reservation: Reservation, *, overrule_commit: bool = False) -> None:
        """Refund now if the store answers, else keep retrying in the background; never raises.

        The refund outlives a cancelled caller (a request cut at shutdown), and ``stop`` waits
        for it: the state store closes only after every refund sent has landed or been queued."""
        await self.outlive_caller(self._refund_or_queue(_Refund(reservation, overrule_commit)))

    async def outlive_caller(self, write: Coroutine[Any, Any, None]) -> None:
        """Run a store write that must land even if its caller is cancelled (aiohttp cancels a
        handler cut at shutdown twice, which detaches a plain shield); ``stop`` waits for it."""
        running = asyncio.ensure_future(write)
        self._in_flight.add(running)
        running.add_done_callback(self._in_flight.discard)
        await asyncio.shield(running)

    async def _refund_or_queue(self, refund: _Refund) -> None:
        try:
            await self._refund(refund)
        except StateError as error:
            log.warning("refund of reservation %s failed (%s); retrying", refund.reservation.id, error.message)
            self._pending[refund.reservation.id] = refund
            self._wake.set()

    async def _refund(self, refund: _Refund) -> None:
        if await self.state.refund_credit(refund.reservation, overrule_commit=refund.overrule_commit):
            self.on_settled(REFUNDED, 1)

    @property
    def pending(self) -> int:
        """Refunds waiting for the store (0 when the ledger is settled)."""
        return len(self._pending)

    # -- background ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._retry()  # one last try; what remains is reclaimed when its lease runs out

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            await self._retry()
            if loop.time() >= next_sweep:
                await self.sweep()
                next_sweep = loop.time() + SWEEP_INTERVAL
            self._wake.clear()
            wait = RETRY_INTERVAL if self._pending else max(0.0, next_sweep - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _retry(self) -> None:
        for reservation_id, refund in list(self._pending.items()):
            try:
                await self._refund(refund)
            except StateUnavailable:
                return  # the store is still away: try again later
            except StateError as error:
                log.warning("refund of reservation %s failed for good: %s", reservation_id, error.message)
            self._pending.pop(reservation_id, None)

    async def sweep(self) -> int:
        """Refund reservations whose lease ran out uncommitted; how many."""
        try:
            reclaimed = await self.state.reclaim_credits()
        except StateError as error:
            log.warning("reclaiming run-out reservations failed: %s", error.message)
            return 0
        if reclaimed:
            log.info("reclaimed %s reservation(s) whose lease ran out", reclaimed)
            self.on_settled(RECLAIMED, reclaimed)
        return reclaimed
