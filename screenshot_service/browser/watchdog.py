"""What watches a running instance: its liveness, and its processes' memory while it captures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..config import BrowserConfig
from . import memory
from .driver_errors import CallTimeout, DriverError
from .instance import Instance

PROBE_INTERVAL = 1.0  # seconds between liveness probes of a browser

Verdict = Callable[[Instance, str], None]  # what to do with an instance found lost or hung, and why


async def watch(instance: Instance, hang_timeout: float, lost: Verdict, hung: Verdict) -> None:
    """Call ``lost`` when ``instance``'s process exits or its connection drops, ``hung`` when it
    answers no DevTools call within ``hang_timeout`` s; return once it is lost either way."""
    exited: asyncio.Future[Any] = asyncio.ensure_future(instance.chromium.process.wait())
    try:
        while instance.alive:
            waiting: set[asyncio.Future[Any]] = {exited, instance.lost}
            await asyncio.wait(waiting, timeout=PROBE_INTERVAL)
            if not instance.alive:
                return
            if exited.done():
                lost(instance, f"its process exited (status {exited.result()})")
                return
            try:
                await instance.browser.probe(hang_timeout)
            except CallTimeout:
                hung(instance, f"no answer to a DevTools call in {hang_timeout:g} s")
            except DriverError:
                lost(instance, "its DevTools connection dropped")
    finally:
        exited.cancel()


async def guard_memory(instance: Instance, cfg: BrowserConfig, lost: Verdict) -> None:
    """While ``instance`` has captures in flight, kill its renderers over ``max_page_memory_mb``;
    once the browser and its utility processes hold more than their limit, kill it and call ``lost``
    (memory.py).  That is read while idle too: memory a finished capture left behind (freed Blobs
    are not always given back to the system) must not fail the next one."""
    if not memory.supported():
        return
    shared_limit = memory.shared_limit_mb(cfg.max_browser_memory_mb, instance.share, cfg.max_page_memory_mb)
    processes = memory.ProcessWatch(instance.chromium.pid)
    while instance.alive:
        await asyncio.wait({instance.lost}, timeout=memory.INTERVAL)
        if not instance.alive:
            return
        if instance.in_use:
            instance.memory_kills += processes.kill_over(cfg.max_page_memory_mb)
        shared = processes.shared_mb()
        if shared > shared_limit:
            # Nothing says which page grew them: the captures in flight all fail (pool.Lease.guard).
            instance.shared_memory_exceeded = shared_limit
            instance.chromium.kill()  # the memory comes back at once
            lost(instance, f"its browser and utility processes held {shared} MB (limit {shared_limit} MB); killed")
            return
