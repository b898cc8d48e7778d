"""Chromium instances: launch, warm, recycle, crash and hang detection, relaunch with backoff.

Every browser is launched by one task (``_run``), so relaunches and recycles
never race each other, and none of them runs on a request's path: while no
browser of a lane is up, ``pick`` refuses at once (503) instead of waiting.

Each instance has a watchdog that marks it lost when its process exits, its
DevTools socket drops, or it answers no DevTools call within
``hang_timeout_seconds`` (hung, e.g. under SIGSTOP: it is killed).  A lost
instance gives back its warm contexts' proxy channels and is killed as a
process group in the background; the runner then relaunches its seat, retrying
with backoff until a launch succeeds.  Closing never blocks the runner: it is
bounded and runs in a task of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from ..config import BrowserConfig
from . import launcher, memory
from .admission import JOBS, SYNC
from .contexts import ContextFactory, WarmContext
from .driver import BrowserDriver, CallTimeout, DriverError
from .errors import BrowserUnavailable

log = logging.getLogger("screenshot_service.pool")

# Chromium's niceness per lane, relative to this process (README, Jobs): its threads', and its
# session's where the kernel shares CPU between sessions first (autogroup).
LANE_NICE = {SYNC: 0, JOBS: 15}
LANE_SESSION_NICE = {SYNC: 5, JOBS: 15}
PROBE_INTERVAL = 1.0  # seconds between liveness probes of a browser
BACKOFF_FIRST = 0.1  # seconds before the second launch attempt of a seat; doubles each failure ...
BACKOFF_MAX = 5.0  # ... up to this


@dataclass(eq=False)  # identity semantics: instances live in sets
class Instance:
    """One Chromium process and the contexts it owns."""

    chromium: launcher.ChromiumProcess
    share: int  # how many of its lane's slots this instance serves
    lane: str
    warm: deque[WarmContext] = field(default_factory=deque)
    in_use: int = 0
    warming: int = 0
    captures: int = 0
    retiring: bool = False  # recycled: serves its last leases, then closes
    lost: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def browser(self) -> BrowserDriver:
        return self.chromium.driver

    @property
    def alive(self) -> bool:
        return not self.lost.done()


@dataclass(eq=False)
class _Seat:
    """A place for one instance: relaunched into when its instance is lost."""

    share: int
    lane: str
    instance: Instance | None = None
    failures: int = 0  # launches failed in a row
    next_try: float = 0.0  # loop time of the next launch attempt


class Supervisor:
    def __init__(
        self,
        cfg: BrowserConfig,
        executable: str,
        factory: ContextFactory,
        seats: list[tuple[int, str]],
        *,
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        self.cfg = cfg
        self.executable = executable
        self.extra_flags = extra_flags
        self.factory = factory
        self._seats = [_Seat(share, lane) for share, lane in seats]
        self._running: set[Instance] = set()  # every instance whose process is not yet closed
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # watchdogs, warming, lease ends: cancelled on stop
        self._releases: set[asyncio.Task[Any]] = set()  # proxy channels being given back: awaited on stop
        self._closing: dict[Instance, asyncio.Task[None]] = {}  # processes being closed: awaited on stop
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.restarts = 0  # relaunches after a crash or hang
        self.recycles = 0  # planned replacements after recycle_after captures

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Launch and warm every seat before serving, so the first request is as fast as the hundredth."""
        try:
            for seat, instance in zip(self._seats, await asyncio.gather(*map(self._launch, self._seats)), strict=True):
                seat.instance = instance
        except BaseException:
            await self.stop()
            raise
        await asyncio.gather(*(self._refill(seat.instance) for seat in self._seats if seat.instance))
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(t for t in [self._runner, *self._tasks] if t), return_exceptions=True)
        for instance in list(self._running):
            self._close_soon(instance)
        await asyncio.gather(*self._closing.values(), *self._releases, return_exceptions=True)

    # -- what the pool asks ------------------------------------------------------------------
    def pick(self, lane: str) -> Instance:
        """The least busy live instance of ``lane``; 503 at once when none is up."""
        live = [i for i in self.instances(lane) if i.alive and not i.retiring]
        if not live:
            raise BrowserUnavailable("no browser is up: it is being restarted; retry shortly", retry_after=2)
        return min(live, key=lambda i: (i.in_use - len(i.warm), i.in_use))

    def instances(self, lane: str | None = None) -> list[Instance]:
        """The seated instances (live or lost), not the retiring ones."""
        return [s.instance for s in self._seats if s.instance is not None and lane in (None, s.lane)]

    def pids(self, lane: str | None = None) -> list[int]:
        return [i.chromium.pid for i in self._running if lane in (None, i.lane)]

    def returned(self, instance: Instance, warm: WarmContext | None) -> None:
        """A lease on ``instance`` ended (``warm``: its context, if it got one)."""
        instance.captures += 1
        self._spawn(self._after_lease(instance, warm))

    # -- the runner --------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._wake.clear()
            try:
                for seat in self._seats:
                    instance = seat.instance
                    if instance is None or not instance.alive:
                        if loop.time() >= seat.next_try:
                            await self._relaunch(seat)
                    elif instance.captures >= self.cfg.recycle_after:
                        await self._recycle(seat)
            except Exception:
                log.exception("browser supervisor: unexpected error; carrying on")
            waits = [s.next_try - loop.time() for s in self._seats if s.instance is None or not s.instance.alive]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(waits)) if waits else None)

    async def _relaunch(self, seat: _Seat) -> None:
        try:
            fresh = await self._launch(seat)
        except Exception as exc:
            seat.failures += 1
            pause = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (seat.failures - 1))
            seat.next_try = asyncio.get_running_loop().time() + pause
            log.error("relaunching chromium failed (%s in a row; next try in %.1f s): %r", seat.failures, pause, exc)
            return
        seat.failures = 0
        replaced, seat.instance = seat.instance, fresh
        if replaced is not None:
            self.restarts += 1
        self._spawn(self._refill(fresh))

    async def _recycle(self, seat: _Seat) -> None:
        old = seat.instance
        assert old is not None
        try:
            fresh = await self._launch(seat)
        except Exception as exc:
            log.error("recycling chromium failed, keeping the old one: %r", exc)
            old.captures = 0
            return
        await self._refill(fresh)  # warm before swapping in: no capture pays for the relaunch
        if not fresh.alive:
            return  # killed while warming: the old one serves on, and the runner tries again
        seat.instance = fresh
        if old.alive:
            self.recycles += 1
            self._retire(old)
            log.info("recycled chromium pid=%s after %s captures", old.chromium.pid, old.captures)
        else:
            self.restarts += 1  # it died while its successor warmed: that was the relaunch

    async def _launch(self, seat: _Seat) -> Instance:
        chromium = await launcher.launch(
            self.executable,
            self.extra_flags,
            timeout=self.cfg.launch_timeout_seconds,
            nice=LANE_NICE[seat.lane],
            session_nice=LANE_SESSION_NICE[seat.lane],
        )
        instance = Instance(chromium=chromium, share=seat.share, lane=seat.lane)
        self._running.add(instance)
        chromium.driver.on_disconnect(lambda: self._lose(instance, "its DevTools connection dropped"))
        self._spawn(self._watch(instance))
        self._spawn(self._guard_memory(instance))
        if self._closed:  # stop() ran while we launched
            self._lose(instance, "")
        return instance

    # -- losing, retiring, closing -----------------------------------------------------------
    async def _watch(self, instance: Instance) -> None:
        """Mark ``instance`` lost when its process exits or it stops answering (hung: killed)."""
        exited: asyncio.Future[Any] = asyncio.ensure_future(instance.chromium.process.wait())
        try:
            while instance.alive:
                waiting: set[asyncio.Future[Any]] = {exited, instance.lost}
                await asyncio.wait(waiting, timeout=PROBE_INTERVAL)
                if not instance.alive:
                    return
                if exited.done():
                    self._lose(instance, f"its process exited (status {exited.result()})")
                    return
                try:
                    await instance.browser.probe(self.cfg.hang_timeout_seconds)
                except CallTimeout:
                    self._hung(instance, f"no answer to a DevTools call in {self.cfg.hang_timeout_seconds:g} s")
                except DriverError:
                    self._lose(instance, "its DevTools connection dropped")
        finally:
            exited.cancel()

    async def _guard_memory(self, instance: Instance) -> None:
        """While ``instance`` has captures in flight, kill its renderers over the memory limit (memory.py)."""
        if not memory.supported():
            return
        watch = memory.RendererWatch(instance.chromium.pid)
        while instance.alive:
            await asyncio.wait({instance.lost}, timeout=memory.INTERVAL)
            if instance.alive and instance.in_use:
                watch.kill_over(self.cfg.max_page_memory_mb)

    def _hung(self, instance: Instance, why: str) -> None:
        instance.chromium.kill()  # SIGKILL reaches a stopped process too
        self._lose(instance, f"hung ({why}); killed")

    def _lose(self, instance: Instance, why: str) -> None:
        """``instance`` is dead or unusable: fail its leases, free its contexts, kill it, relaunch."""
        if instance.lost.done():
            return
        instance.lost.set_result(None)
        if why and not instance.retiring and not self._closed:
            log.error("chromium pid=%s lost: %s; relaunching", instance.chromium.pid, why)
        self._drop_warm(instance)
        self._close_soon(instance)
        self._wake.set()

    def _retire(self, instance: Instance) -> None:
        instance.retiring = True
        self._drop_warm(instance)  # its warm contexts die with it
        if instance.in_use == 0:
            self._close_soon(instance)

    def _drop_warm(self, instance: Instance) -> None:
        while instance.warm:
            self._release_soon(instance.warm.popleft())

    def _release_soon(self, warm: WarmContext) -> None:
        task = asyncio.ensure_future(self.factory.release(warm))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    def _close_soon(self, instance: Instance) -> None:
        """Close ``instance`` in a task of its own (bounded), once, whoever asks."""
        if instance in self._running and instance not in self._closing:
            self._closing[instance] = asyncio.ensure_future(self._close(instance))

    async def _close(self, instance: Instance) -> None:
        if not instance.lost.done():
            instance.lost.set_result(None)
        self._drop_warm(instance)
        try:
            await instance.chromium.close()
        finally:
            self._running.discard(instance)
            self._closing.pop(instance, None)

    # -- contexts ----------------------------------------------------------------------------
    async def _after_lease(self, instance: Instance, used: WarmContext | None) -> None:
        if used is not None:
            if instance.alive and not instance.retiring:
                if not await self.factory.dispose(instance.browser, used):
                    self._hung(instance, "a context would not close")
            else:
                await self.factory.release(used)
        if instance.retiring:
            if instance.in_use == 0:
                self._close_soon(instance)
        elif instance.alive:
            if instance.captures >= self.cfg.recycle_after:
                self._wake.set()  # the runner replaces it; warming more contexts here would be waste
            else:
                await self._refill(instance)

    async def _refill(self, instance: Instance) -> None:
        while (
            not self._closed
            and instance.alive
            and not instance.retiring
            and len(instance.warm) + instance.in_use + instance.warming < instance.share
        ):
            instance.warming += 1
            try:
                warm = await self.factory.create(instance.browser)
            except CallTimeout:
                self._hung(instance, "a new context took too long")
                return
            except Exception as exc:
                if instance.alive:
                    log.warning("warming a context failed: %r", exc)
                return
            finally:
                instance.warming -= 1
            if instance.alive and not instance.retiring and not self._closed:
                instance.warm.append(warm)
            else:
                await self.factory.release(warm)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
