"""The per-capture memory guard: a renderer over ``browser.max_page_memory_mb`` is killed.

Every capture runs in a browser context of its own and Chromium never puts two
contexts' pages in one renderer process, so a renderer's memory is one
capture's page (its JS heap and ArrayBuffers, DOM, decoded images, canvases).
While a browser has captures in flight, its renderers' resident memory is read
from ``/proc`` every ``INTERVAL`` seconds; one over the limit gets SIGKILL.
Chromium then reports that page's target crashed with status ``killed``
(page_driver.PageDriver.crashed), and the lease fails that capture alone with 422
``page_memory_exceeded`` (pool.Lease.guard): the browser, its other renderers
and every other tenant's capture carry on.

Counted: anonymous and shared-memory pages (``RssAnon + RssShmem``), not the
mapped Chromium binary every renderer shares.  A reading, not a hard cap: a page
allocating faster than the interval can briefly exceed the limit before it is
stopped.  Without ``/proc`` (not Linux) the guard does nothing and says so once.

A page also grows memory outside its renderer: Blob bytes, and in an incognito
context CacheStorage, IndexedDB and the like, live in the browser process (or
its utility processes: network, storage).  Those processes are shared by every
capture of the browser, so nothing there says which page grew them: when their
sum passes ``browser.max_browser_memory_mb`` the browser is killed (the memory
comes back at once) and relaunched, and every capture it had in flight fails
with 422 ``page_memory_exceeded``.  Chromium has no switch that caps Blob memory
(its in-memory limit is a fixed 2 GB per context on 64-bit Linux), so this guard
is the cap; storage quotas per origin (storage_quota.py) keep writers far below
it.  Not counted: the GPU process, which holds the compositor surfaces of the
shots themselves (1.2 GB after one 3840x2160 shot at scale 3), bounded by the
pixel budget (capture/bounds.py) rather than by anything a page stores.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator

log = logging.getLogger("screenshot_service.pool")

INTERVAL = 0.2  # seconds between readings while captures are in flight
KILLED = "killed"  # Target.targetCrashed's status for a renderer that got SIGKILL
PROC = "/proc"
_READ_MAX = 1 << 16  # bytes: more than any status, cmdline or children file this reads
# What an idle browser holds, with room: about 15 MB alone, 100-200 MB with a pool's contexts open.
BROWSER_BASE_MB = 512


# Processes told apart by their command line; any other below the browser is a utility process.
_KINDS = ((b"--type=renderer", "renderer"), (b"--type=zygote", "zygote"), (b"--type=gpu-process", "gpu"))


def shared_limit_mb(configured: int, slots: int, page_limit_mb: int) -> int:
    """``browser.max_browser_memory_mb``, or when 0 its default: the browser's own needs plus a
    page's limit (``browser.max_page_memory_mb``) for each of its ``slots``: Blobs, storage and
    the screenshot a capture reads back (about 7 bytes per device px at its peak) are held there."""
    return configured or BROWSER_BASE_MB + slots * page_limit_mb


def supported() -> bool:
    return os.path.isdir(f"{PROC}/self/task")


def _read(path: str) -> bytes:
    """A small /proc file in one read (a reading runs five times a second: no file objects)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, _READ_MAX)
    finally:
        os.close(fd)


def _children(pid: int) -> Iterator[int]:
    """Direct children of ``pid``: Chromium forks from several threads, so every thread's list."""
    try:
        threads = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return
    for tid in threads:
        try:
            text = _read(f"{PROC}/{pid}/task/{tid}/children")
        except OSError:
            continue
        yield from map(int, text.split())


def _alive(pid: int) -> bool:
    return os.path.exists(f"{PROC}/{pid}")


class ProcessWatch:
    """The processes below one Chromium and their memory: ``over(limit)`` reads the renderers,
    ``shared_mb()`` the browser and its utility processes.

    Renderers are forked by Chromium's zygote processes, which the browser starts once.  The
    browser has dozens of threads, each with its own list of children, so the whole tree is
    walked only every ``RESCAN_EVERY`` readings (or when a zygote or utility process is gone);
    the readings in between list the zygotes' children alone.
    """

    RESCAN_EVERY = 25  # readings (5 s at INTERVAL)

    def __init__(self, browser_pid: int) -> None:
        self.browser_pid = browser_pid
        self._kinds: dict[int, str] = {}  # pid -> "renderer", "zygote", "gpu" or "" (a command line never changes)
        self._zygotes: list[int] = []
        self._shared: list[int] = [browser_pid]  # the browser and its utility (network, storage) processes
        self._readings = 0

    def renderers(self) -> list[int]:
        self._readings += 1
        known = [*self._zygotes, *self._shared]
        if not self._zygotes or self._readings % self.RESCAN_EVERY == 0 or not all(map(_alive, known)):
            found, seen = self._walk([self.browser_pid])
            self._zygotes = [pid for pid in seen if self._kinds.get(pid) == "zygote"]
            self._shared = [pid for pid in seen if pid == self.browser_pid or self._kinds.get(pid) == ""]
            self._kinds = {pid: kind for pid, kind in self._kinds.items() if pid in seen}
            return found
        return self._walk(self._zygotes)[0]

    def shared_mb(self) -> int:
        """Memory of the processes every capture of this browser shares (as of the last ``renderers``;
        the first reading walks the tree itself, so an idle browser's utility processes count too)."""
        if not self._readings:
            self.renderers()
        return sum(map(resident_mb, self._shared))

    def _walk(self, roots: list[int]) -> tuple[list[int], set[int]]:
        found: list[int] = []
        todo = list(roots)
        seen: set[int] = set(roots)
        while todo:
            for child in _children(todo.pop()):
                if child in seen:
                    continue
                seen.add(child)
                if self._kind(child) == "renderer":
                    found.append(child)
                else:
                    todo.append(child)  # a zygote: the renderers are its children
        return found, seen

    def _kind(self, pid: int) -> str:
        kind = self._kinds.get(pid)
        if kind is None:
            try:
                cmdline = _read(f"{PROC}/{pid}/cmdline")
            except OSError:
                cmdline = b""
            kind = next((kind for flag, kind in _KINDS if flag in cmdline), "")
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
        status = _read(f"{PROC}/{pid}/status")
    except OSError:
        return 0
    kb = 0
    for field in (b"\nRssAnon:", b"\nRssShmem:"):
        start = status.find(field)
        if start >= 0:
            kb += int(status[start + len(field):].split(None, 1)[0])
    return kb // 1024
