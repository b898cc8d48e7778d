"""BrowserPool: warm, isolated browser contexts behind a bounded number of slots.

The facade the service uses; the parts are separate modules:

* ``admission`` — places, slots and the queue bound (503 ``overloaded`` at once), shared
  fairly between keys (``fair_slots``);
* ``supervisor`` — the Chromium instances: launch, recycle after
  ``recycle_after`` captures, crash and hang detection, relaunch with backoff;
* ``contexts`` — the warm context factory: a fresh incognito context with a
  blank page per capture, disposed afterwards (with its proxy channel), so no
  cookie, storage or cache ever crosses two captures.

Two *lanes*: sync requests lease from ``pool_size`` slots; asynchronous jobs
(when the pool is given ``job_slots``) lease from their own slots in their own
Chromium, started 15 nice steps down, so a job backlog only takes the CPU sync
captures leave idle (README, Jobs).  Bookkeeping is in ``stats()`` for
/metrics, /readyz and logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import BrowserConfig
from . import memory
from .admission import JOBS, SYNC, Admission, Place
from .contexts import ContextFactory, ContextHook, WarmContext
from .driver_errors import ConnectionLost, DriverError
from .errors import BrowserUnavailable, PageMemoryExceeded
from .executable import find_executable
from .fair_slots import ANONYMOUS
from .instance import Instance
from .page_driver import PageDriver, Prime
from .supervisor import Supervisor

T = TypeVar("T")
STOP_RETRY = 0.05  # seconds between cancellations of work whose browser or renderer died
CRASH_REPORT_BOUND = 2.0  # seconds a killed renderer's crash report may trail its failed call
__all__ = ["JOBS", "SYNC", "BrowserPool", "ContextHook", "Lease"]


@dataclass
class Lease:
    """One capture's exclusive use of a fresh context and page."""

    page: PageDriver
    handle: Any  # what the ContextHook attached (the egress proxy channel)
    waited_s: float
    _instance: Instance  # the browser: its loss, and what its memory guard did
    memory_limit_mb: int = 0  # browser.max_page_memory_mb: the guard (memory.py) kills a renderer over it

    async def guard(self, work: Awaitable[T]) -> T:
        """Run ``work``, but fail fast if the browser (503) or this page's renderer dies under it:
        422 when the memory guard killed the renderer or the browser, else 503."""
        kills_before = self._instance.memory_kills
        task = asyncio.ensure_future(work)
        try:
            waiting: set[asyncio.Future[Any]] = {task, self._instance.lost, self.page.crashed}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        if task not in done:
            await _stop(task)
            raise self._death()
        try:
            return task.result()
        except Exception as exc:
            # Whatever a step raised once its renderer or browser died (printToPDF's "Printing failed",
            # a navigation's net error, a script's ``null``) is that death.  Chromium may answer the
            # call before it reports the crash: after a kill of the guard's, wait for the report.
            if self._instance.memory_kills != kills_before:
                reports: set[asyncio.Future[Any]] = {self._instance.lost, self.page.crashed}
                await asyncio.wait(reports, timeout=CRASH_REPORT_BOUND, return_when=asyncio.FIRST_COMPLETED)
            if self._instance.lost.done() or self.page.crashed.done():
                raise self._death() from exc
            if isinstance(exc, ConnectionLost):
                raise BrowserUnavailable("the page's renderer crashed during the capture; retry", retry_after=1) from exc
            raise

    def _death(self) -> Exception:
        """The error for a capture whose browser was lost or whose renderer died."""
        if self._instance.lost.done():
            if self._instance.shared_memory_exceeded:
                limit = self._instance.shared_memory_exceeded
                return PageMemoryExceeded(
                    f"the browser's shared processes (Blobs, storage) held more than {limit} MB; "
                    "the captures in flight in it were stopped", details={"limit_mb": limit})
            return BrowserUnavailable("the browser crashed during the capture; retry", retry_after=1)
        status = self.page.crashed.result()
        if status == memory.KILLED:  # SIGKILL: the memory guard's (or the kernel's OOM killer's)
            return PageMemoryExceeded(
                f"the page used more than {self.memory_limit_mb} MB of memory; its capture was stopped",
                details={"limit_mb": self.memory_limit_mb},
            )
        return BrowserUnavailable("the page's renderer crashed during the capture; retry", retry_after=1)


class BrowserPool:
    def __init__(
        self,
        cfg: BrowserConfig,
        *,
        executable: str | None = None,
        extra_flags: tuple[str, ...] = (),
        context_hook: ContextHook | None = None,
        context_prime: Prime | None = None,
        job_slots: int = 0,
    ) -> None:
        self.cfg = cfg
        self.executable = executable or find_executable(cfg.executable)
        self.job_slots = job_slots
        self.admission = Admission(cfg.pool_size, cfg.max_queue, job_slots)
        self.contexts = ContextFactory(context_hook, prime=context_prime, storage_quota_mb=cfg.max_page_storage_mb)
        seats = [(share, SYNC) for share in _split(cfg.pool_size, cfg.browsers)]
        if job_slots:
            seats.append((job_slots, JOBS))
        self.supervisor = Supervisor(cfg, self.executable, self.contexts, seats, extra_flags=extra_flags)
        self.captures = 0  # leases, both lanes
        self.jobs_captures = 0  # leases of the jobs lane

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.supervisor.start()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for leases in flight to end. True if all did."""
        deadline = time.monotonic() + timeout
        while self.admission.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.admission.busy == 0

    async def close(self) -> None:
        self.admission.draining = True
        await self.supervisor.stop()

    # -- stats -------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return not self.admission.draining and any(i.alive and not i.retiring for i in self.supervisor.instances(SYNC))

    @property
    def draining(self) -> bool:
        return self.admission.draining

    @property
    def restarts(self) -> int:
        return self.supervisor.restarts

    @property
    def recycles(self) -> int:
        return self.supervisor.recycles

    def stats(self) -> dict[str, int]:
        def warm(lane: str) -> int:
            return sum(len(i.warm) for i in self.supervisor.instances(lane) if i.alive)

        return {
            "size": self.cfg.pool_size,
            "in_use": self.admission.in_use[SYNC],
            "waiting": self.admission.waiting,
            "warm": warm(SYNC),
            "warming": sum(i.warming for i in self.supervisor.instances() if i.alive),
            "jobs_size": self.job_slots,
            "jobs_in_use": self.admission.in_use[JOBS],
            "jobs_warm": warm(JOBS),
            "jobs_captures": self.jobs_captures,
            "browsers": sum(1 for i in self.supervisor.instances() if i.alive),
            "restarts": self.restarts,
            "recycles": self.recycles,
            "captures": self.captures,
        }

    def chromium_pids(self, lane: str | None = None) -> list[int]:
        """Every Chromium this pool runs (retiring ones included), of ``lane`` or all."""
        return self.supervisor.pids(lane)

    def popups_open(self) -> int:
        return sum(i.browser.popups_open() for i in self.supervisor.instances() if i.alive)

    # -- leasing -------------------------------------------------------------------------------
    def place(self, holder: str = ANONYMOUS, share: float = 1.0) -> contextlib.AbstractContextManager[Place]:
        """Hold one of the pool's places for a whole request of key ``holder`` (admission.Admission.place)."""
        return self.admission.place(holder, share)

    def shed_if_full(self) -> None:
        """503 now if no request, whoever's, could get a place (admission.Admission.shed_if_full)."""
        self.admission.shed_if_full()

    @contextlib.asynccontextmanager
    async def lease(self, lane: str = SYNC) -> AsyncIterator[Lease]:
        """A fresh context and page of ``lane``; 503 at once when the lane has no browser up."""
        lane = self.admission.lane(lane)
        started = time.monotonic()
        self.supervisor.pick(lane)  # no browser up: refuse now rather than after a wait for a slot
        place = await self.admission.acquire(lane)
        instance: Instance | None = None
        warm: WarmContext | None = None
        try:
            instance = self.supervisor.pick(lane)  # it may have died while we waited
            instance.in_use += 1
            warm = instance.warm.popleft() if instance.warm else await self._new_context(instance)
            yield Lease(page=warm.page, handle=warm.handle, waited_s=time.monotonic() - started, _instance=instance,
                        memory_limit_mb=self.cfg.max_page_memory_mb)
        finally:
            self.admission.release(lane, place)
            if instance is not None:
                instance.in_use -= 1
                self.captures += 1
                self.jobs_captures += lane == JOBS
                self.supervisor.returned(instance, warm)

    async def _new_context(self, instance: Instance) -> WarmContext:
        try:
            return await instance.new_context(self.contexts)
        except DriverError as exc:
            raise BrowserUnavailable("the browser could not open a context; retry", retry_after=1) from exc


async def _stop(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended.  Cancelled again every ``STOP_RETRY`` s: a
    cancellation that arrives just as a DevTools call completes can be lost, and the work would
    run on to its end."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_RETRY)
    if not task.cancelled():
        task.exception()  # retrieved: never "exception was never retrieved"


def _split(total: int, parts: int) -> list[int]:
    """Share ``total`` slots over ``parts`` browsers as evenly as possible (never 0)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
