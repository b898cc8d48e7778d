"""Admission: may this key start a capture now? Rate, concurrency, then quota.

The order is deliberate: the cheap, non-charging checks first (rate, in-flight
count), the credit last.  A capture that times out is refunded, but its concurrency
slot stays taken for the plan's ``timeout_penalty`` times its duration: holding
browsers with pages that never finish is slowed by the plan like any other use.  A credit is reserved atomically before the capture
and ends committed (delivered) or refunded (anything else) exactly once, by the
rules of ``ledger``; the refund is shielded so even a cancelled request gives
its credit back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..config import PlanConfig
from ..errors import CaptureTimeout, ConcurrencyLimited, InvalidApiKey, QuotaExceeded, RateLimited
from ..state.base import KeyRecord, Reservation, StateStore
from ..state.errors import StateUnavailable
from .concurrency import ConcurrencyGate
from .ledger import Ledger
from .quota import current_period
from .rate import RateDecision, RateLimiter

log = logging.getLogger("screenshot_service.admission")


@dataclass
class Ticket:
    """One admitted capture: its credit and its concurrency slot."""

    key: KeyRecord
    plan: PlanConfig
    reservation: Reservation
    give_up_at: float  # loop time: a commit not acknowledged by then means not delivered
    _ledger: Ledger
    committed: bool = field(default=False)  # the store acknowledged the commit
    _commit_sent: bool = field(default=False)

    async def commit(self) -> None:
        """Record the capture as delivered; StateUnavailable (503, nothing charged) if the store
        does not acknowledge it in time: the caller must then not deliver it."""
        if self.committed:
            return
        self._commit_sent = True
        if not await self._ledger.commit(self.reservation, self.give_up_at):
            raise StateUnavailable("the capture could not be recorded in time, so it is not charged; retry",
                                   retry_after=1)
        self.committed = True

    async def settle(self, *, delivered: bool) -> None:
        """Refund unless committed and delivered. A capture that fails after its commit (the
        deadline, a cancelled request) is refunded too, overruling the commit."""
        if not (delivered and self.committed):
            await self._ledger.refund(self.reservation, overrule_commit=self._commit_sent)


@dataclass(frozen=True)
class QuotaStanding:
    limit: int  # captures a month on the plan
    used: int  # credits this month's quota holds (reserved or committed)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass
class LimitState:
    """What admission decided for one request, as it learns it: the rate bucket's answer and
    the quota's standing.  The API turns it into response headers (api/limit_headers.py)."""

    plan: str = ""
    rate: RateDecision | None = None
    quota: QuotaStanding | None = None


def _timed_out(error: BaseException, deadline: float | None, now: float) -> bool:
    """Did the capture end by running out of time?  The deadline's own timer may surface as a
    cancellation here (its TimeoutError is raised further out), so the clock decides too."""
    return isinstance(error, CaptureTimeout) or (
        deadline is not None and now >= deadline and isinstance(error, asyncio.CancelledError | TimeoutError)
    )


class Admission:
    def __init__(
        self,
        state: StateStore,
        rate: RateLimiter,
        gate: ConcurrencyGate,
        plans: dict[str, PlanConfig],
        ledger: Ledger,
    ) -> None:
        self.state = state
        self.ledger = ledger  # the app's one ledger: its retries run, and shutdown waits for its refunds
        self.rate = rate
        self.gate = gate
        self.plans = plans

    def plan_of(self, key: KeyRecord) -> PlanConfig:
        plan = self.plans.get(key.plan)
        if plan is None:
            raise InvalidApiKey(f"this key's plan {key.plan!r} is no longer offered; ask for a new key")
        return plan

    async def check_rate(self, key: KeyRecord, limits: LimitState) -> PlanConfig:
        """Count one request against the key's rate; records the decision in ``limits`` either way."""
        plan = self.plan_of(key)
        decision = await self.rate.hit(key.id, plan)
        limits.plan, limits.rate = key.plan, decision
        used = await self.state.credits_used(key.id, current_period().name)
        limits.quota = QuotaStanding(plan.monthly_captures, used)
        if not decision.allowed:
            rps = f"{plan.requests_per_second:g} request{'s' if plan.requests_per_second != 1 else ''}"
            raise RateLimited(
                f"{rps} per second on plan '{key.plan}'; retry in {decision.retry_after:.1f} s",
                retry_after=decision.retry_after,
                details={"plan": key.plan, "requests_per_second": plan.requests_per_second,
                         "burst": plan.burst, "retry_after_seconds": round(decision.retry_after, 3)},
            )
        return plan

    @contextlib.asynccontextmanager
    async def admit(
        self, key: KeyRecord, limits: LimitState, lease_seconds: float, *, deadline: float | None = None,
        browser_seconds: Callable[[], float] | None = None,
    ) -> AsyncIterator[Ticket]:
        """Take a concurrency slot and reserve a credit for one capture.

        (The request itself was rate-checked when it was authenticated.)  Leaving
        the block does NOT commit: the caller commits once the result is safely
        stored; anything not committed by then is refunded.  ``lease_seconds``: how
        long the reservation may wait for its commit (the capture's time left, plus a margin).
        ``deadline`` (loop time): a capture still undelivered then timed out, and keeps its
        concurrency slot ``plan.timeout_penalty`` times as long again as it ran in the browser
        (``browser_seconds()``: its time loading and capturing, not waiting in a queue behind
        other captures; without it, the whole time since admission).
        """
        plan = self.plan_of(key)
        token = await self.gate.acquire(key.id, plan.concurrency)
        if token is None:
            raise ConcurrencyLimited(
                f"plan '{key.plan}' allows {plan.concurrency} capture(s) in flight per key; retry when one ends",
                retry_after=1,
                details={"plan": key.plan, "concurrency": plan.concurrency},
            )
        loop = asyncio.get_running_loop()
        began, hold = loop.time(), 0.0
        try:
            reservation, give_up_at = await self.reserve(key, plan, limits, lease_seconds)
            ticket = Ticket(key=key, plan=plan, reservation=reservation, give_up_at=give_up_at, _ledger=self.ledger)
            delivered = False
            try:
                yield ticket
                delivered = True  # the block returned: its result goes to the caller
            except BaseException as error:
                if _timed_out(error, deadline, loop.time()):
                    ran = browser_seconds() if browser_seconds is not None else loop.time() - began
                    hold = ran * plan.timeout_penalty
                raise
            finally:
                # Never leave a credit dangling: not delivered by now means failed.
                await ticket.settle(delivered=delivered)  # the refund outlives a cancelled caller (Ledger.refund)
        finally:
            await self.ledger.outlive_caller(self._release(key.id, token, hold))

    async def _release(self, key_id: str, token: str, hold_seconds: float) -> None:
        # A slot the store cannot take back now expires with its lease; failing here would
        # turn a delivered (and charged) capture into an error.
        try:
            await self.gate.release(key_id, token, hold_seconds)
        except StateUnavailable as error:
            log.warning("releasing a concurrency slot failed (%s); its lease expires it", error.message)

    async def reserve(
        self, key: KeyRecord, plan: PlanConfig, limits: LimitState, lease_seconds: float
    ) -> tuple[Reservation, float]:
        """Take one credit of this month's quota (422 when used up) in one round trip; records the
        quota's standing in ``limits``.  Returns it with the loop time its commit must be acknowledged by."""
        period = current_period()
        reserved, give_up_at = await self.ledger.reserve(key.id, period.name, plan.monthly_captures, lease_seconds)
        reservation, used = reserved.reservation, reserved.used
        limits.quota = QuotaStanding(plan.monthly_captures, used)
        if reservation is None:
            raise QuotaExceeded(
                f"the {plan.monthly_captures} monthly captures of plan '{key.plan}' are used up; "
                f"the quota resets at {period.resets_at_iso}",
                details={"plan": key.plan, "monthly_captures": plan.monthly_captures, "used": used,
                         "resets_at": period.resets_at_iso},
            )
        return reservation, give_up_at

    async def reserve_many(
        self, key: KeyRecord, plan: PlanConfig, limits: LimitState, count: int, lease_seconds: float
    ) -> tuple[Reservation, ...]:
        """``count`` credits of this month's quota at once, or a 422 and none at all (a batch)."""
        period = current_period()
        reserved = await self.ledger.reserve_many(key.id, period.name, plan.monthly_captures, count, lease_seconds)
        limits.quota = QuotaStanding(plan.monthly_captures, reserved.used)
        if reserved.reservations is None:
            remaining = limits.quota.remaining
            raise QuotaExceeded(
                f"this batch needs {count} captures and {remaining} of the {plan.monthly_captures} monthly "
                f"captures of plan '{key.plan}' remain; the quota resets at {period.resets_at_iso}",
                details={"plan": key.plan, "monthly_captures": plan.monthly_captures, "used": reserved.used,
                         "needed": count, "remaining": remaining, "resets_at": period.resets_at_iso},
            )
        return reserved.reservations
