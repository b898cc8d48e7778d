"""Chromium instances: launch, warm, recycle, crash and hang detection, relaunch with backoff.

Each seat (a place for one instance) has at most one relaunch and one recycle
under way, each in a task of its own, started by the runner (``_run``): a
relaunch never waits behind a recycle's launch or warm-up, and none of them
runs on a request's path: while no browser of a lane is up, ``pick`` refuses
at once (503) instead of waiting.  Whichever of the two finishes installs its
browser only if the seat still holds the one it replaces; the other's browser
is surplus and closed.

A watchdog (watchdog.py) marks an instance lost when its process exits, its
DevTools pipe drops, or it answers nothing within ``hang_timeout_seconds`` (it is
killed).  A lost instance gives back its contexts' proxy channels and is killed
as a process group in the background; the runner relaunches its seat, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from ..config import BrowserConfig
from . import launcher, watchdog
from .admission import JOBS, SYNC
from .contexts import ContextFactory, WarmContext
from .driver_errors import CallTimeout
from .errors import BrowserUnavailable
from .instance import RECYCLE, RELAUNCH, Instance, Seat

log = logging.getLogger("screenshot_service.pool")

# Chromium's niceness per lane, relative to this process (README, Jobs): its threads', and its
# session's where the kernel shares CPU between sessions first (autogroup).
LANE_NICE = {SYNC: 0, JOBS: 15}
LANE_SESSION_NICE = {SYNC: 5, JOBS: 15}
BACKOFF_FIRST = 0.1  # seconds before the second launch attempt of a seat; doubles each failure ...
BACKOFF_MAX = 5.0  # ... up to this


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
        self._seats = [Seat(share, lane) for share, lane in seats]
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
            for seat in self._seats:
                self._tend(seat, loop.time())
            waits = [s.next_try - loop.time() for s in self._seats if s.empty and RELAUNCH not in s.under_way]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(waits)) if waits else None)

    def _tend(self, seat: Seat, now: float) -> None:
        """Start what ``seat`` needs, each in a task of its own."""
        if seat.empty:
            if RELAUNCH not in seat.under_way and now >= seat.next_try:
                self._start(seat, RELAUNCH, self._relaunch(seat, seat.instance))
        elif seat.instance and seat.instance.captures >= self.cfg.recycle_after and RECYCLE not in seat.under_way:
            self._start(seat, RECYCLE, self._recycle(seat, seat.instance))

    def _start(self, seat: Seat, what: str, work: Coroutine[Any, Any, None]) -> None:
        task = self._spawn(work)
        seat.under_way[what] = task

        def done(_: asyncio.Task[None]) -> None:
            del seat.under_way[what]
            if not task.cancelled() and task.exception() is not None:
                log.error("browser supervisor: %s failed unexpectedly", what, exc_info=task.exception())
            self._wake.set()  # the seat may need the other one now

        task.add_done_callback(done)

    async def _relaunch(self, seat: Seat, lost: Instance | None) -> None:
        try:
            fresh = await self._launch(seat)
        except Exception as exc:
            seat.failures += 1
            pause = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (seat.failures - 1))
            seat.next_try = asyncio.get_running_loop().time() + pause
            log.error("relaunching chromium failed (%s in a row; next try in %.1f s): %r", seat.failures, pause, exc)
            return
        seat.failures = 0
        if self._install(seat, lost, fresh):
            self._spawn(self._refill(fresh))

    async def _recycle(self, seat: Seat, old: Instance) -> None:
        try:
            fresh = await self._launch(seat)
        except Exception as exc:
            await self._keep(old, f"{exc!r}")
            return
        await self._refill(fresh)  # warm before swapping in: no capture pays for the relaunch
        if not fresh.alive:
            await self._keep(old, "its successor died while warming")
            return
        if not self._install(seat, old, fresh):
            return  # the seat was relaunched meanwhile
        if old.alive:
            self.recycles += 1
            self._retire(old)
            log.info("recycled chromium pid=%s after %s captures", old.chromium.pid, old.captures)

    async def _keep(self, old: Instance, why: str) -> None:
        """A failed recycle: the old browser serves another recycle_after captures, warmed again."""
        old.captures = 0
        if old.alive:
            log.error("recycling chromium failed (%s); keeping the old one", why)
            await self._refill(old)

    def _install(self, seat: Seat, replaced: Instance | None, fresh: Instance) -> bool:
        """Seat ``fresh`` if the seat still holds ``replaced`` or has no live browser; else
        ``fresh`` is surplus (the other of a relaunch and a recycle got there first): closed."""
        current = seat.instance
        if current is not replaced and not seat.empty:
            self._retire(fresh)
            return False
        seat.instance = fresh
        if current is not None and not current.alive:
            self.restarts += 1  # whichever replaced a lost browser was its relaunch
        return True

    async def _launch(self, seat: Seat) -> Instance:
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
        self._spawn(watchdog.watch(instance, self.cfg.hang_timeout_seconds, self._lose, self._hung))
        self._spawn(watchdog.guard_memory(instance, self.cfg, self._lose))
        if self._closed:  # stop() ran while we launched
            self._lose(instance, "")
        return instance

    # -- losing, retiring, closing -----------------------------------------------------------
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
                warm = await instance.new_context(self.factory)
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

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
