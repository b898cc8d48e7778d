"""The one capture pipeline: cache → admission → capture → store → settle → remember.

The sync endpoints, the job runner and the one-shot CLI all run captures through
``CapturePipeline.run``; handlers parse, call it and render.  The deadline,
counted from the request's arrival, covers every state round trip as well as
the capture.  A cache hit renders nothing and costs no credit; a failed cache
write after a delivered capture is logged, never turned into an error.

Jobs reserve their credit when submitted and settle it once their outcome is
stored (the job record is the durable proof of delivery), so their orders skip
admission and settlement here (``Order.admit = False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ..browser.pool import SYNC
from ..errors import ApiError, CallerGone, CaptureTimeout
from ..faults import LayerError
from ..limits.admission import Admission, LimitState
from ..state.base import KeyRecord
from ..state.errors import StateError
from ..storage.customer import CustomerS3
from ..storage.errors import StorageError
from . import proxy_options
from .options import CaptureOptions
from .result import CaptureResult
from .service import CaptureService
from .timing import ADMISSION, CACHE, CAPTURE, NAVIGATION, SETTLE, StageTimings

log = logging.getLogger("screenshot_service.capture")

SETTLE_MARGIN = 5.0  # seconds a reservation outlives the capture's deadline, for its commit
REMEMBER_BOUND = 2.0  # seconds a cache write may take after delivery

# The steps between which a test can inject a fault (freeze the state store, kill
# Chromium, drop the client): before admission, after the reservation, after the
# capture (before its commit), after the commit (before the answer).
FAULT_POINTS = ("admitting", "reserved", "captured", "committed")
FaultHook = Callable[[], Awaitable[None]]


class FaultPoints:
    """Hooks awaited when the pipeline reaches a step; empty (a no-op) in production."""

    def __init__(self) -> None:
        self._hooks: dict[str, FaultHook] = {}

    def at(self, point: str, hook: FaultHook | None) -> None:
        if point not in FAULT_POINTS:
            raise ValueError(f"unknown fault point {point!r}; one of {', '.join(FAULT_POINTS)}")
        if hook is None:
            self._hooks.pop(point, None)
        else:
            self._hooks[point] = hook

    async def reach(self, point: str) -> None:
        hook = self._hooks.get(point)
        if hook is not None:
            await hook()


@dataclass
class Order:
    """One capture to run: what, for whom, and since when."""

    opts: CaptureOptions
    started: float  # loop time the request arrived: the deadline counts from it
    key: KeyRecord | None = None  # the caller, admitted against its plan (sync requests)
    account: str | None = None  # whose cache and capture records; defaults to key's id; None (CLI): none
    limits: LimitState = field(default_factory=LimitState)  # what admission decided, filled in
    base_url: str = ""
    customer_s3: CustomerS3 | None = None  # the caller's own bucket: no cache either way
    lane: str = SYNC
    admit: bool = True  # False: the credit is already reserved and settled by the caller (jobs)
    # False once the client has hung up: its capture is then not delivered, so not charged
    caller_present: Callable[[], bool] = lambda: True
    timings: StageTimings = field(default_factory=StageTimings)  # where its time goes (Server-Timing)

    @property
    def owner(self) -> str | None:
        """Whose cache and capture records: ``account``, else the caller's key id."""
        return self.account or (self.key.id if self.key else None)


class CapturePipeline:
    def __init__(self, service: CaptureService, admission: Admission | None = None) -> None:
        self.service = service
        self.admission = admission
        self.faults = FaultPoints()

    def arrival_bound(self, started: float) -> contextlib.AbstractAsyncContextManager[None]:
        """The deadline's outer bound for what runs before the options are known (authentication,
        the rate check): no capture may last longer than ``capture.deadline_seconds`` from arrival."""
        return _deadline(started, started + self.service.deadline_seconds)

    async def run(self, order: Order) -> CaptureResult:
        try:
            return await self._run(order)
        except (ApiError, LayerError) as error:
            _log_failure(error)
            raise

    async def _run(self, order: Order) -> CaptureResult:
        opts = order.opts
        if order.key is not None and self.admission is not None:  # before the cache: its plan may not allow it
            proxy_options.check_access(opts.proxy_pool, opts.proxy is not None, order.key.plan,
                                       self.admission.plan_of(order.key), self.service.proxies.names)
        deadline = self.service.deadline_for(opts, order.started)
        account = order.owner
        # The caller opted in; a comparison is about now, so compare_to is never answered from the cache.
        cacheable = opts.cache and account is not None and order.customer_s3 is None and opts.compare_to is None
        async with _deadline(order.started, deadline):
            hit = await self._cached(order.opts, account, order.timings) if account and cacheable else None
            if hit is not None:
                return hit
            result = await self._admitted_capture(order, deadline)
        if account and cacheable:
            await self._remember(order.opts, account, result, order.timings)
        return result

    async def _admitted_capture(self, order: Order, deadline: float) -> CaptureResult:
        if not order.admit or order.key is None or self.admission is None:
            return await self._capture(order)
        await self.faults.reach("admitting")
        lease = deadline - asyncio.get_running_loop().time() + SETTLE_MARGIN
        admitting = order.timings.start(ADMISSION)
        async with self.admission.admit(order.key, order.limits, lease, deadline=deadline,
                                        browser_seconds=lambda: order.timings.seconds_in(NAVIGATION, CAPTURE)) as ticket:
            order.timings.add(ADMISSION, admitting)
            await self.faults.reach("reserved")
            result = await self._capture(order)
            await self.faults.reach("captured")
            if not order.caller_present():
                raise CallerGone("the client hung up before its capture was delivered")
            settling = order.timings.start(SETTLE)  # the commit, then the slot released on leaving the block
            await asyncio.shield(ticket.commit())  # not acknowledged: 503, and the finally refunds
            await self.faults.reach("committed")
        order.timings.add(SETTLE, settling)
        return result

    async def _capture(self, order: Order) -> CaptureResult:
        return await self.service.capture(
            order.opts, started=order.started, base_url=order.base_url,
            customer_s3=order.customer_s3, lane=order.lane, timings=order.timings,
            account=order.owner,
        )

    async def _cached(self, opts: CaptureOptions, account: str, timings: StageTimings) -> CaptureResult | None:
        try:
            with timings.stage(CACHE):
                return await self.service.cached(opts, account)
        except (StateError, StorageError) as error:  # the cache is an optimisation: without it, capture afresh
            log.warning("cache lookup failed: %s", error.message)
            return None

    async def _remember(self, opts: CaptureOptions, account: str, result: CaptureResult,
                        timings: StageTimings) -> None:
        try:
            with timings.stage(CACHE):
                async with asyncio.timeout(REMEMBER_BOUND):
                    await asyncio.shield(self.service.remember(opts, account, result))
        except (StateError, TimeoutError) as error:  # delivered and paid: a later cache miss is harmless
            log.warning("caching the result failed: %s", getattr(error, "message", "timed out"))


@contextlib.asynccontextmanager
async def _deadline(started: float, deadline: float) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except TimeoutError:
        budget = deadline - started
        raise CaptureTimeout(
            f"the capture did not finish within {budget:g} s", details={"deadline_seconds": budget}
        ) from None


def _log_failure(error: ApiError | LayerError) -> None:
    """Why a capture failed, where the access log has only its status.  A caller's or a page's
    fault (4xx) is info; the service's or a layer's (a crashed browser, storage away), a warning.
    Messages and details name hosts, never URLs; they may quote what a page threw."""
    status = error.status if isinstance(error, ApiError) else 500
    code = error.code if isinstance(error, ApiError) else type(error).__name__
    details = json.dumps(error.details, default=str)[:2000] if error.details else ""
    log.log(logging.INFO if status < 500 else logging.WARNING, "capture failed: %s: %s %s",
            code, error.message, details)
