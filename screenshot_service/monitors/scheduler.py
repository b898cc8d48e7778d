"""MonitorScheduler: claims due monitor runs and runs them, ``monitors.workers`` at a time.

Whichever instance claims a slot runs it (store.claim is atomic), so with several instances on
one store each run happens once.  Between claims it sleeps until the earliest monitor is due,
at most ``poll_interval``, so a monitor created on another instance is seen that fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..faults import LayerError
from .runs import MonitorRuns
from .store import Claim, MonitorStore

log = logging.getLogger("screenshot_service.monitors")


class MonitorScheduler:
    def __init__(self, store: MonitorStore, runs: MonitorRuns, *, workers: int, poll_interval: float) -> None:
        self.store = store
        self.runs = runs
        self.workers = workers
        self.poll_interval = poll_interval
        self._slots = asyncio.Semaphore(max(workers, 1))
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing = False

    def start(self) -> None:
        if self.workers > 0 and self._loop is None:
            self._loop = asyncio.create_task(self._dispatch(), name="monitors-scheduler")

    def wake(self) -> None:
        self._wake.set()

    def stop_claiming(self) -> None:
        """The app starts draining: start no new run (the ones in flight go on)."""
        if self._loop is not None:
            self._loop.cancel()

    async def stop(self, drain_seconds: float) -> None:
        """Claim nothing more; let runs in flight finish within ``drain_seconds``, cut the rest
        (their credits are refunded; the monitors run again at their next slot)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                claim = await self._next()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._run(claim), name="monitor-run")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next(self) -> Claim:
        while True:
            self._wake.clear()
            claim = Claim()
            try:
                claim = await self.store.claim()
                if self._failing:
                    log.info("claiming monitor runs works again")
                self._failing = False
            except LayerError as error:  # the store is away: the monitors wait in it
                if not self._failing:
                    log.warning("claiming a monitor run failed: %s", error.message)
                self._failing = True
            except Exception:  # a bug must not silently stop every monitor on this instance
                log.exception("claiming a monitor run failed")
            if claim.monitor is not None:
                return claim
            pause = self.poll_interval if claim.wait is None else min(max(claim.wait, 0.0), self.poll_interval)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _run(self, claim: Claim) -> None:
        holding = True
        try:
            notice = await self.runs.run(claim)
            self._slots.release()  # the capture is over: the webhook does not hold a run's place
            holding = False
            if notice is not None:
                await self.runs.notify(notice)
        except LayerError as error:  # recording the run failed: the monitor runs again next slot
            log.warning("monitor run could not be recorded: %s", error.message)
        except Exception:
            log.exception("monitor run failed unexpectedly")
        finally:
            if holding:
                self._slots.release()
