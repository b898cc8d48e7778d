"""The per-capture memory guard: a renderer over ``browser.max_page_memory_mb`` is killed.

Every capture runs in a browser context of its own and Chromium never puts two
contexts' pages in one renderer process, so a renderer's memory is one
capture's page (its JS heap and ArrayBuffers, DOM, decoded images, canvases).
While a browser has captures in flight, its renderers' resident memory is read
from ``/proc`` every ``INTERVAL`` seconds; one over the limit gets SIGKILL.
Chromium then reports that page's target crashed with status ``killed``
(driver.PageDriver.crashed), and the lease fails that capture alone with 422
``page_memory_exceeded`` (pool.Lease.guard): the browser, its other renderers
and every other tenant's capture carry on.

Counted: anonymous and shared-memory pages (``RssAnon + RssShmem``), not the
mapped Chromium binary every renderer shares.  A reading, not a hard cap: a page
allocating faster than the interval can briefly exceed the limit before it is
stopped.  Without ``/proc`` (not Linux) the guard does nothing and says so once.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("screenshot_service.pool")

INTERVAL = 0.2  # seconds between readings while captures are in flight
KILLED = "killed"  # Target.targetCrashed's status for a renderer that got SIGKILL
PROC = Path("/proc")


def supported() -> bool:
    return (PROC / "self" / "task").is_dir()


def _children(pid: int) -> Iterator[int]:
    """Direct children of ``pid``: Chromium forks from several threads, so every thread's list."""
    try:
        threads = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return
    for tid in threads:
        try:
            text = (PROC / str(pid) / "task" / tid / "children").read_text()
        except OSError:
            continue
        yield from (int(child) for child in text.split())


class RendererWatch:
    """The renderers below one Chromium and their memory; ``over(limit)`` is one reading."""

    def __init__(self, browser_pid: int) -> None:
        self.browser_pid = browser_pid
        self._kinds: dict[int, bool] = {}  # pid -> is a renderer (its command line never changes)

    def renderers(self) -> list[int]:
        found: list[int] = []
        todo = [self.browser_pid]
        seen: set[int] = set()
        while todo:
            for child in _children(todo.pop()):
                if child in seen:
                    continue
                seen.add(child)
                if self._is_renderer(child):
                    found.append(child)
                else:
                    todo.append(child)  # a zygote: the renderers are its children
        self._kinds = {pid: kind for pid, kind in self._kinds.items() if pid in seen}
        return found

    def _is_renderer(self, pid: int) -> bool:
        kind = self._kinds.get(pid)
        if kind is None:
            try:
                kind = b"--type=renderer" in (PROC / str(pid) / "cmdline").read_bytes()
            except OSError:
                kind = False
            self._kinds[pid] = kind
        return kind

    def over(self, limit_mb: int) -> list[tuple[int, int]]:
        """(pid, MB) of every renderer now holding more than ``limit_mb``."""
        heavy = []
        for pid in self.renderers():
            used = resident_mb(pid)
            if used > limit_mb:
                heavy.append((pid, used))
        return heavy

    def kill_over(self, limit_mb: int) -> int:
        """SIGKILL every renderer over ``limit_mb``; how many were killed."""
        killed = 0
        for pid, used in self.over(limit_mb):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            killed += 1
            log.warning("renderer pid=%s of chromium pid=%s held %s MB (limit %s MB): killed, its capture fails",
                        pid, self.browser_pid, used, limit_mb)
        return killed


def resident_mb(pid: int) -> int:
    """Anonymous plus shared-memory resident MB of ``pid`` (0 once it is gone)."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    kb = 0
    for line in text.splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            kb += int(line.split()[1])
    return kb // 1024
