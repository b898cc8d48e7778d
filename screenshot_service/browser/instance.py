"""One Chromium process and the contexts it owns, and the seat it holds in the supervisor."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import launcher
from .contexts import ContextFactory, WarmContext
from .driver import BrowserDriver
from .driver_errors import ConnectionLost

T = TypeVar("T")
RELAUNCH, RECYCLE = "relaunch", "recycle"  # what a seat may have under way, one of each at most


@dataclass(eq=False)  # identity semantics: instances live in sets
class Instance:
    chromium: launcher.ChromiumProcess
    share: int  # how many of its lane's slots this instance serves
    lane: str
    warm: deque[WarmContext] = field(default_factory=deque)
    in_use: int = 0
    warming: int = 0
    captures: int = 0
    retiring: bool = False  # recycled: serves its last leases, then closes
    memory_kills: int = 0  # renderers the memory guard killed (memory.py)
    shared_memory_exceeded: int = 0  # the limit (MB) its shared processes passed, when that is why it was lost
    lost: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def browser(self) -> BrowserDriver:
        return self.chromium.driver

    @property
    def alive(self) -> bool:
        return not self.lost.done()

    async def new_context(self, factory: ContextFactory) -> WarmContext:
        """A fresh context, or ``ConnectionLost`` as soon as this instance is lost: a page being
        made in a browser that dies waits for events that never come (until the factory's bound)."""
        return await self.unless_lost(factory.create(self.browser))

    async def unless_lost(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        try:
            waiting: set[asyncio.Future[Any]] = {task, self.lost}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                # Cancelled once, and waited for: its clean-up (the context's proxy channel) must
                # run to its end, and against a dead browser it does not wait.
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            raise ConnectionLost("the browser went away")
        return task.result()


@dataclass(eq=False)
class Seat:
    """A place for one instance: relaunched into when its instance is lost, recycled into when
    it has served ``recycle_after`` captures."""

    share: int
    lane: str
    instance: Instance | None = None
    failures: int = 0  # launches failed in a row
    next_try: float = 0.0  # loop time of the next launch attempt
    under_way: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # RELAUNCH, RECYCLE

    @property
    def empty(self) -> bool:
        """No live browser: the seat needs a relaunch."""
        return self.instance is None or not self.instance.alive
