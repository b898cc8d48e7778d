"""BrowserPool: warm, isolated browser contexts behind a bounded semaphore.

Bookkeeping, in one place so /metrics, /readyz and logs can show it:

* ``pool_size`` slots (an asyncio.Semaphore); at most ``max_queue`` callers wait
  for one, anyone beyond that gets 503 ``overloaded`` at once: requests never
  pile up into timeouts.
* Each Chromium instance keeps its share of the slots as *warm* contexts (a
  fresh incognito context with a blank page and default viewport).  A lease
  takes one; when it ends, the context is disposed in the background and a new
  one warms up, so no cookie, storage or cache ever crosses two captures.
* An instance is recycled after ``recycle_after`` captures (a replacement is
  launched first; the old one closes when its last lease ends).
* When Chromium dies, leases on it fail at once with 503 ``browser_unavailable``
  and a replacement is launched in the background.
* Two *lanes*: sync requests lease from ``pool_size`` slots; asynchronous jobs
  (when the pool is given ``job_slots``) lease from their own slots in their own
  Chromium, started 15 nice steps down.  Captures are CPU-bound on a small
  machine, so slots alone would still let a job backlog slow every sync capture
  (6x on 2 cores in the benchmark); niced, jobs run on the CPU that sync
  captures leave idle, and still progress under a sync flood (nice 15 weighs
  about 1/30 of nice 0).  The sync lane's threads are not niced: as root
  Chromium raises its display and IO threads itself, which a nice would have
  to forbid (see launcher), and that costs a third of its throughput.  Where
  the kernel shares CPU between sessions first (autogroup), the sync lane's
  session is niced by 5 instead: this process then wins the CPU at once when a
  request arrives (a 503 took up to 100 ms on a saturated 2-core machine
  without it, under 25 ms with it), with no loss of capture throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pyppeteer.browser import BrowserContext
from pyppeteer.errors import NetworkError
from pyppeteer.page import Page

from ..config import BrowserConfig
from ..errors import BrowserUnavailable, Overloaded
from . import launcher
from .hazards import guard_page, watch_popups

log = logging.getLogger("screenshot_service.pool")
T = TypeVar("T")

DEFAULT_VIEWPORT = {"width": 1280, "height": 800, "deviceScaleFactor": 1}

SYNC = "sync"
JOBS = "jobs"
# Chromium's niceness per lane, relative to this process (see above): its threads', and its
# session's where the kernel shares CPU between sessions first (autogroup).
LANE_NICE = {SYNC: 0, JOBS: 15}
LANE_SESSION_NICE = {SYNC: 5, JOBS: 15}
CLOSE_TIMEOUT = 5.0  # a context that will not dispose in this long means a wedged browser


class ContextHook(Protocol):
    """Lets another component (the egress proxy) shape each new context."""

    async def open(self) -> tuple[dict[str, Any], Any]:
        """Extra Target.createBrowserContext params, and a handle given to the lease."""
        ...

    async def close(self, handle: Any) -> None: ...


@dataclass
class WarmContext:
    context: BrowserContext
    page: Page
    handle: Any = None  # what the ContextHook attached (e.g. its proxy channel)


@dataclass
class Lease:
    """One capture's exclusive use of a fresh context and page."""

    page: Page
    context: BrowserContext
    handle: Any
    waited_s: float
    _lost: asyncio.Future[None]

    async def guard(self, work: Awaitable[T]) -> T:
        """Run ``work``, but fail fast with 503 if the browser dies under it."""
        task = asyncio.ensure_future(work)
        try:
            waiting: set[asyncio.Future[Any]] = {task, self._lost}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        if task not in done:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise BrowserUnavailable("the browser crashed during the capture; retry", retry_after=1)
        try:
            return task.result()
        except NetworkError as exc:
            # The DevTools connection or the page's target went away under us:
            # a browser or renderer crash, not something the caller did.
            lost = "browser" if self._lost.done() else "page's renderer"
            raise BrowserUnavailable(f"the {lost} crashed during the capture; retry", retry_after=1) from exc


@dataclass(eq=False)  # identity semantics: instances live in sets
class _Instance:
    """One Chromium process and the contexts it owns."""

    chromium: launcher.ChromiumProcess
    share: int  # how many of its lane's slots this instance serves
    lane: str = SYNC
    warm: deque[WarmContext] = field(default_factory=deque)
    in_use: int = 0
    warming: int = 0
    captures: int = 0
    retiring: bool = False
    lost: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def alive(self) -> bool:
        return not self.lost.done()


class BrowserPool:
    def __init__(
        self,
        cfg: BrowserConfig,
        *,
        executable: str | None = None,
        extra_flags: tuple[str, ...] = (),
        context_hook: ContextHook | None = None,
        job_slots: int = 0,
    ) -> None:
        self.cfg = cfg
        self.executable = executable or launcher.find_executable(cfg.executable)
        self.extra_flags = extra_flags
        self.context_hook = context_hook
        self.job_slots = job_slots  # 0: jobs share the sync lane's slots
        self._slots = asyncio.Semaphore(cfg.pool_size)
        self._job_slots = asyncio.Semaphore(max(job_slots, 1))
        self._instances: list[_Instance] = []  # the active ones: `browsers` sync, one for jobs
        self._retiring: set[_Instance] = set()  # recycled, finishing their last leases
        self._waiting = 0
        self._in_use = 0  # sync leases
        self._jobs_in_use = 0
        self._places = 0  # requests holding a place() from arrival to answer
        self._draining = False
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._launch_lock = asyncio.Lock()
        self.restarts = 0  # relaunches after a crash
        self.recycles = 0  # planned replacements after recycle_after captures
        self.captures = 0  # leases, both lanes
        self.jobs_captures = 0  # leases of the jobs lane

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        lanes = [(share, SYNC) for share in _split(self.cfg.pool_size, self.cfg.browsers)]
        if self.job_slots:
            lanes.append((self.job_slots, JOBS))
        instances = await asyncio.gather(*(self._launch(share, lane) for share, lane in lanes))
        self._instances = list(instances)
        # Warm before serving, so the first request is as fast as the hundredth.
        await asyncio.gather(*(self._refill(instance) for instance in self._instances))

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for leases in flight to end. True if all did."""
        deadline = time.monotonic() + timeout
        while self._in_use + self._jobs_in_use and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self._in_use + self._jobs_in_use == 0

    async def close(self) -> None:
        self._closed = True
        self._draining = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        everything = [*self._instances, *self._retiring]
        await asyncio.gather(*(self._shutdown(i) for i in everything), return_exceptions=True)
        self._instances.clear()

    # -- stats -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return not self._draining and any(i.alive for i in self._instances if i.lane == SYNC)

    @property
    def draining(self) -> bool:
        return self._draining

    def stats(self) -> dict[str, int]:
        def warm(lane: str) -> int:
            return sum(len(i.warm) for i in self._instances if i.alive and i.lane == lane)

        return {
            "size": self.cfg.pool_size,
            "in_use": self._in_use,
            "waiting": self._waiting,
            "warm": warm(SYNC),
            "jobs_size": self.job_slots,
            "jobs_in_use": self._jobs_in_use,
            "jobs_warm": warm(JOBS),
            "jobs_captures": self.jobs_captures,
            "browsers": sum(1 for i in self._instances if i.alive),
            "restarts": self.restarts,
            "recycles": self.recycles,
            "captures": self.captures,
        }

    def chromium_pids(self, lane: str | None = None) -> list[int]:
        return [i.chromium.pid for i in [*self._instances, *self._retiring] if lane in (None, i.lane)]

    # -- leasing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def place(self) -> Iterator[None]:
        """Hold one of the pool's places (``pool_size`` slots + ``max_queue``) for a whole request.

        Taken before any other work, so a burst is refused at once and in full: without it,
        every request of a burst would pass the check, do its auth and credit work, and only
        then be turned away by ``lease()``.
        """
        self.check_capacity()
        if self._places >= self.cfg.pool_size + self.cfg.max_queue:
            raise Overloaded(
                f"all {self.cfg.pool_size} browser slots and {self.cfg.max_queue} queue places are taken",
                retry_after=1,
                details={"pool_size": self.cfg.pool_size, "max_queue": self.cfg.max_queue},
            )
        self._places += 1
        try:
            yield
        finally:
            self._places -= 1

    def check_capacity(self) -> None:
        """Raise 503 now if a lease would be refused."""
        if self._draining:
            raise BrowserUnavailable("the service is shutting down", retry_after=5)
        if self._slots.locked() and self._waiting >= self.cfg.max_queue:
            raise Overloaded(
                f"all {self.cfg.pool_size} browser slots are busy and {self._waiting} requests are waiting",
                retry_after=1,
                details={"pool_size": self.cfg.pool_size, "queued": self._waiting},
            )

    @contextlib.asynccontextmanager
    async def lease(self, lane: str = SYNC) -> AsyncIterator[Lease]:
        """A fresh context and page of ``lane``; jobs use the sync lane when there is no jobs lane."""
        if lane == JOBS and not self.job_slots:
            lane = SYNC
        started = time.monotonic()
        slots = self._slots if lane == SYNC else self._job_slots
        if lane == SYNC:
            self.check_capacity()
            self._waiting += 1
            try:
                await slots.acquire()
            finally:
                self._waiting -= 1
            self._in_use += 1
        else:  # the job runner bounds how many wait here
            if self._draining:
                raise BrowserUnavailable("the service is shutting down", retry_after=5)
            await slots.acquire()
            self._jobs_in_use += 1
        instance: _Instance | None = None
        warm: WarmContext | None = None
        try:
            instance = await self._pick_instance(lane)
            instance.in_use += 1
            warm = instance.warm.popleft() if instance.warm else await self._new_context(instance)
            yield Lease(
                page=warm.page,
                context=warm.context,
                handle=warm.handle,
                waited_s=time.monotonic() - started,
                _lost=instance.lost,
            )
        finally:
            if lane == SYNC:
                self._in_use -= 1
            else:
                self._jobs_in_use -= 1
            slots.release()
            if instance is not None:
                instance.in_use -= 1
                instance.captures += 1
                self.captures += 1
                self.jobs_captures += lane == JOBS
                self._spawn(self._after_lease(instance, warm))

    async def _after_lease(self, instance: _Instance, used: WarmContext | None) -> None:
        if used is not None:
            await self._dispose(instance, used)
        if instance.alive and not instance.retiring and instance.captures >= self.cfg.recycle_after:
            await self._recycle(instance)
        elif instance.retiring and instance.in_use == 0:
            await self._shutdown(instance)
        else:
            await self._refill(instance)

    async def _pick_instance(self, lane: str) -> _Instance:
        live = [i for i in self._instances if i.alive and not i.retiring and i.lane == lane]
        if not live:
            await self._replace_dead()
            live = [i for i in self._instances if i.alive and i.lane == lane]
            if not live:
                raise BrowserUnavailable("the browser is restarting; retry shortly", retry_after=2)
        return min(live, key=lambda i: (i.in_use - len(i.warm), i.in_use))

    # -- contexts ----------------------------------------------------------------------------
    async def _new_context(self, instance: _Instance) -> WarmContext:
        browser = instance.chromium.browser
        params: dict[str, Any] = {}
        handle = None
        if self.context_hook is not None:
            params, handle = await self.context_hook.open()
        try:
            result = await browser._connection.send("Target.createBrowserContext", params)
            context = BrowserContext(browser, result["browserContextId"])
            browser._contexts[context._id] = context
            await browser._connection.send(
                "Browser.setDownloadBehavior", {"behavior": "deny", "browserContextId": context._id}
            )
            page = await context.newPage()
            await page.setViewport(DEFAULT_VIEWPORT)
            guard_page(page)
        except BaseException:
            if handle is not None and self.context_hook is not None:
                await self.context_hook.close(handle)
            raise
        return WarmContext(context=context, page=page, handle=handle)

    async def _refill(self, instance: _Instance) -> None:
        while (
            not self._closed
            and instance.alive
            and not instance.retiring
            and len(instance.warm) + instance.in_use + instance.warming < instance.share
        ):
            instance.warming += 1
            try:
                warm = await self._new_context(instance)
            except Exception as exc:
                if instance.alive:
                    log.warning("warming a context failed: %r", exc)
                return
            finally:
                instance.warming -= 1
            if instance.alive and not instance.retiring and not self._closed:
                instance.warm.append(warm)
            else:
                await self._dispose(instance, warm)

    async def _dispose(self, instance: _Instance, warm: WarmContext) -> None:
        try:
            if instance.alive:
                await asyncio.wait_for(warm.context.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            # Disposing a context kills its renderer; if even that hangs, the
            # browser is wedged: kill it and let crash recovery relaunch.
            log.error("context close hung; killing chromium pid=%s", instance.chromium.pid)
            instance.chromium.kill()
        except Exception:
            pass  # the browser went away underneath; crash handling takes it from here
        finally:
            if warm.handle is not None and self.context_hook is not None:
                with contextlib.suppress(Exception):
                    await self.context_hook.close(warm.handle)

    # -- instances -------------------------------------------------------------------------------
    async def _launch(self, share: int, lane: str) -> _Instance:
        chromium = await launcher.launch(
            self.executable,
            self.extra_flags,
            timeout=self.cfg.launch_timeout_seconds,
            nice=LANE_NICE[lane],
            session_nice=LANE_SESSION_NICE[lane],
        )
        instance = _Instance(chromium=chromium, share=share, lane=lane)
        watch_popups(chromium.browser)
        chromium.browser.on("disconnected", lambda: self._on_disconnect(instance))
        return instance

    def _on_disconnect(self, instance: _Instance) -> None:
        if instance.lost.done():
            return
        instance.lost.set_result(None)
        instance.warm.clear()
        if self._closed or instance.retiring:
            return
        log.error("chromium pid=%s disconnected; relaunching", instance.chromium.pid)
        self._spawn(self._replace_dead())

    async def _replace_dead(self) -> None:
        async with self._launch_lock:
            for index, instance in enumerate(list(self._instances)):
                if instance.alive or self._closed:
                    continue
                await self._shutdown(instance)
                try:
                    fresh = await self._launch(instance.share, instance.lane)
                except Exception as exc:
                    log.error("relaunching chromium failed: %r", exc)
                    return
                self._instances[index] = fresh
                self.restarts += 1
                self._spawn(self._refill(fresh))

    async def _recycle(self, old: _Instance) -> None:
        async with self._launch_lock:
            if old.retiring or not old.alive or old not in self._instances:
                return
            try:
                fresh = await self._launch(old.share, old.lane)
            except Exception as exc:
                log.error("recycling chromium failed, keeping the old one: %r", exc)
                old.captures = 0
                return
            await self._refill(fresh)  # warm before swapping in: no capture pays for the relaunch
            old.retiring = True
            old.warm.clear()  # its warm contexts die with it
            self._instances[self._instances.index(old)] = fresh
            self._retiring.add(old)
            self.recycles += 1
        log.info("recycling chromium pid=%s after %s captures", old.chromium.pid, old.captures)
        if old.in_use == 0:
            await self._shutdown(old)

    async def _shutdown(self, instance: _Instance) -> None:
        instance.retiring = True
        instance.warm.clear()
        self._retiring.discard(instance)
        if not instance.lost.done():
            instance.lost.set_result(None)
        await instance.chromium.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _split(total: int, parts: int) -> list[int]:
    """Share ``total`` slots over ``parts`` browsers as evenly as possible (never 0)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
