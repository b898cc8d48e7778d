"""Resident memory of a process and its descendants, read from /proc (Linux; no psutil).

Chromium runs in its own session (the pool starts it with ``start_new_session``)
but stays a child of the service process, so "the service's Chromium" is every
descendant found by walking parent pids in ``/proc/*/stat``.  Sums of VmRSS
count shared pages once per process: an upper bound, the usual "RSS" figure
(often twice the real footprint for Chromium).  PSS from ``smaps_rollup``
splits shared pages fairly and is what a tree really costs, but reading it is
~10x dearer, so it is sampled less often.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass

_KIB_PER_MIB = 1024
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
QUIET_WINDOW = 0.05  # seconds per look at the machine's CPU
QUIET_BUSY = 0.25  # a window is quiet when the machine used at most this share of one core in it
QUIET_BOUND = 1.0  # seconds: a machine that never goes quiet is measured as it is


def _machine_busy_seconds() -> float:
    """CPU seconds all processes have used (``/proc/stat``: everything but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICKS


async def machine_quiet(window: float = QUIET_WINDOW, busy: float = QUIET_BUSY, bound: float = QUIET_BOUND) -> bool:
    """Until the machine has been (nearly) idle for one ``window``, at most ``bound`` seconds.
    False when it never was: the measurement then goes ahead on a busy machine."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        before = _machine_busy_seconds()
        await asyncio.sleep(window)
        if _machine_busy_seconds() - before <= busy * window:
            return True
    return False


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User+system CPU of ``pid`` (plus that of its reaped children with ``children``); 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2:].split()
    # after "pid (comm)": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def tree_cpu_seconds(root: int, include_root: bool = False) -> float:
    """CPU used so far by the processes below ``root``, dead renderers included (their
    parents reaped them into ``cutime``).  Cumulative: take differences."""
    total = sum(cpu_seconds(pid, children=True) for pid in descendants(root))
    return total + (cpu_seconds(root) if include_root else 0.0)


def alive(pid: int) -> bool:
    """Running (or stopped), not gone and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _ppid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def children(parent: int) -> list[int]:
    """The live processes whose parent is ``parent``."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _ppid(int(entry)) == parent]


def status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM, ...), or None if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS") or 0


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages divided among their users); 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def tree_rss_kib(root: int) -> int:
    """Summed VmRSS of every descendant of ``root``."""
    return sum(rss_kib(pid) for pid in descendants(root))


def mib(kib: float | None) -> float | None:
    return None if kib is None else round(kib / _KIB_PER_MIB, 1)


@dataclass
class RssSnapshot:
    service_kib: int
    chromium_kib: int
    chromium_pss_kib: int | None = None

    @property
    def total_kib(self) -> int:
        return self.service_kib + self.chromium_kib


class RssSampler:
    """Samples a service process and its descendants on a thread; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.25, pss_every: int = 4, root_in_tree: bool = False) -> None:
        self.pid = pid
        self.root_in_tree = root_in_tree  # the root is Chromium itself (the floor), not the service
        self.interval = interval
        self.pss_every = pss_every  # every Nth sample also reads PSS
        self.peak_chromium_pss_kib = 0
        self._samples = 0
        self.peak_service_kib = 0
        self.peak_chromium_kib = 0
        self.peak_chromium_processes = 0
        self.peak_total_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def snapshot(self, pss: bool = True) -> RssSnapshot:
        children = descendants(self.pid)
        snap = RssSnapshot(service_kib=rss_kib(self.pid), chromium_kib=sum(rss_kib(p) for p in children))
        if pss:
            tree = [self.pid, *children] if self.root_in_tree else children
            snap.chromium_pss_kib = sum(pss_kib(p) for p in tree)
            self.peak_chromium_pss_kib = max(self.peak_chromium_pss_kib, snap.chromium_pss_kib)
        self.peak_service_kib = max(self.peak_service_kib, snap.service_kib)
        self.peak_chromium_kib = max(self.peak_chromium_kib, snap.chromium_kib)
        self.peak_chromium_processes = max(self.peak_chromium_processes, len(children))
        self.peak_total_kib = max(self.peak_total_kib, snap.total_kib)
        return snap

    def _run(self) -> None:
        # Reading smaps of 40 processes costs real CPU: at the lowest priority (per thread on
        # Linux) the sampler only uses what the service under test leaves idle.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while not self._stop.wait(self.interval):
            self._samples += 1
            self.snapshot(pss=self._samples % self.pss_every == 0)

    def start(self) -> None:
        self.snapshot()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        # VmHWM is the kernel's own high-water mark for the service process.
        hwm = status_kib(self.pid, "VmHWM")
        if hwm:
            self.peak_service_kib = max(self.peak_service_kib, hwm)
