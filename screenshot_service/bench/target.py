"""What a run talks to (fixture site, service, floors) and how CPU use is attributed to each."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import fixture_site, naive, procstats, report
from .floor import FloorBrowser
from .load import Answer, Call
from .service import ServiceHandle
from .spec import CaptureSpec

SETTLE_SECONDS = 0.5  # after a run, before reading CPU counters

# The floors, by the prefix of their fields in a scenario record.  Each runs on a Chromium of
# its own, so its CPU is counted apart: "floor" is cold on the fastest binary (the headless
# shell), "warm_floor" warm on the same binary, "full_floor" cold on full Chromium.
COLD, WARM, FULL = "floor", "warm_floor", "full_floor"
FLOOR_KINDS = (COLD, WARM, FULL)


@dataclass
class BenchTarget:
    """Where to send captures and what to measure: filled in by ``run_bench``."""

    site: fixture_site.FixtureSite
    service: ServiceHandle
    floors: dict[str, FloorBrowser]  # by kind; absent kinds are not measured
    session: aiohttp.ClientSession
    executable: str = ""
    deadline: float | None = None  # perf_counter time by which a --quick run must be over
    service_rss: procstats.RssSampler | None = None
    floor_rss: procstats.RssSampler | None = None
    notes: list[str] = field(default_factory=list)

    def service_call(self, spec: CaptureSpec, response_type: str) -> Call:
        return lambda: self.service.request(self.session, self.site.base_url, spec, response_type)

    @property
    def floor(self) -> FloorBrowser | None:
        """The cold floor on the fastest binary: the one every scenario is measured against."""
        return self.floors.get(COLD)

    def floor_call(self, spec: CaptureSpec, kind: str = COLD) -> Call:
        floor = self.floors[kind]
        url = self.site.url(spec.path)

        async def cold() -> str:
            data = await floor.capture(url, spec)
            return "ok" if spec.produced(data) else "bad_image"

        async def warm() -> Answer:
            tab = await floor.open_tab(spec, ready=True)  # before the clock, like a pool's warm context
            try:
                begin = time.perf_counter()
                data = await floor.shoot(tab, url, spec)
                seconds = time.perf_counter() - begin
            finally:
                await floor.close_tab(tab)  # after the clock, before the next request of the run
            return Answer("ok" if spec.produced(data) else "bad_image", seconds=seconds)

        return warm if kind == WARM else cold

    def naive_call(self, spec: CaptureSpec) -> Call:
        url = self.site.url(spec.path)

        async def call() -> Answer:
            data, seconds = await naive.naive_capture(url, spec)
            return Answer("ok" if data.startswith(b"\x89PNG") else "bad_image", seconds=seconds)

        return call


@dataclass
class Cpu:
    """Cumulative CPU seconds: the service's Python process, its Chromium, each floor's Chromium."""

    service: float = 0.0
    chromium: float | None = 0.0  # None: not known (a browser went away in between, see __sub__)
    floors: dict[str, float] = field(default_factory=dict)
    browsers: frozenset[int] = frozenset()  # the service's Chromium processes (its children)

    @classmethod
    def read(cls, target: BenchTarget) -> Cpu:
        pid = target.service.pid
        cpu = cls()
        if pid:
            cpu.service = procstats.cpu_seconds(pid)
            cpu.browsers = frozenset(procstats.children(pid))
            # live Chromium processes, plus instances already recycled and reaped by the service
            cpu.chromium = procstats.tree_cpu_seconds(pid) + procstats.cpu_seconds(pid, children=True) - cpu.service
        for kind, floor in target.floors.items():
            cpu.floors[kind] = procstats.tree_cpu_seconds(floor.pid, include_root=True)
        return cpu

    def __sub__(self, other: Cpu) -> Cpu:
        # A browser recycled or relaunched in between takes its renderers' and zygotes' CPU
        # with it: killed with their browser, they are reaped by init, never by the service.
        lost = not other.browsers <= self.browsers
        chromium = None if lost or self.chromium is None or other.chromium is None else self.chromium - other.chromium
        return Cpu(self.service - other.service, chromium,
                   {kind: self.floors[kind] - other.floors.get(kind, 0.0) for kind in self.floors}, self.browsers)


async def cpu_since(before: Cpu, target: BenchTarget) -> Cpu:
    """CPU used since ``before``, after a pause so the pool's background work (disposing
    used contexts, warming new ones) is counted with the captures that caused it."""
    await asyncio.sleep(SETTLE_SECONDS)
    return Cpu.read(target) - before


def add_cpu(record: dict[str, Any], used: Cpu | None, target: BenchTarget) -> None:
    """CPU per successful capture: less sensitive to a noisy machine than latency is.

    ``used`` is every side's CPU over the shared turn-taking run: each floor's Chromium and the
    service work only for their own side, so each counter is its own.
    """

    def per(seconds: float, ok: int) -> float | None:
        return round(seconds * 1000 / ok, 1) if ok else None

    svc = per(used.service, record["ok"]) if used and target.service.pid else None
    chromium = per(used.chromium, record["ok"]) if used and used.chromium is not None and target.service.pid else None
    record["service_cpu_ms_per_capture"] = svc
    record["service_chromium_cpu_ms_per_capture"] = chromium
    for kind in FLOOR_KINDS:
        seconds = used.floors.get(kind) if used else None
        record[f"{kind}_cpu_ms_per_capture"] = (
            None if seconds is None else per(seconds, record.get(f"{kind}_ok") or 0))
    record["cpu_ratio"] = report.ratio(svc + chromium if svc is not None and chromium is not None else None,
                                       record["floor_cpu_ms_per_capture"])
