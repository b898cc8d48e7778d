"""What a run talks to (fixture site, service, floor) and how CPU use is attributed to each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import fixture_site, naive, procstats, report
from .floor import FloorBrowser
from .load import Call
from .service import ServiceHandle
from .spec import CaptureSpec

SETTLE_SECONDS = 0.5  # after a run, before reading CPU counters


@dataclass
class BenchTarget:
    """Where to send captures and what to measure: filled in by ``run_bench``."""

    site: fixture_site.FixtureSite
    service: ServiceHandle
    floor: FloorBrowser | None
    session: aiohttp.ClientSession
    executable: str = ""
    deadline: float | None = None  # perf_counter time by which a --quick run must be over
    service_rss: procstats.RssSampler | None = None
    floor_rss: procstats.RssSampler | None = None
    notes: list[str] = field(default_factory=list)

    def service_call(self, spec: CaptureSpec, response_type: str) -> Call:
        return lambda: self.service.request(self.session, self.site.base_url, spec, response_type)

    def floor_call(self, spec: CaptureSpec) -> Call:
        assert self.floor is not None
        floor = self.floor
        url = self.site.url(spec.path)

        async def call() -> str:
            data = await floor.capture(url, spec)
            return "ok" if data.startswith(b"\x89PNG") else "bad_image"

        return call

    def naive_call(self, spec: CaptureSpec) -> Call:
        url = self.site.url(spec.path)

        async def call() -> str:
            data = await naive.naive_capture(url, spec, self.executable)
            return "ok" if data.startswith(b"\x89PNG") else "bad_image"

        return call


@dataclass
class Cpu:
    """Cumulative CPU seconds: the service's Python process, its Chromium, the floor's Chromium."""

    service: float = 0.0
    chromium: float = 0.0
    floor: float = 0.0

    @classmethod
    def read(cls, target: BenchTarget) -> Cpu:
        pid = target.service.pid
        cpu = cls()
        if pid:
            cpu.service = procstats.cpu_seconds(pid)
            # live Chromium processes, plus instances already recycled and reaped by the service
            cpu.chromium = procstats.tree_cpu_seconds(pid) + procstats.cpu_seconds(pid, children=True) - cpu.service
        if target.floor is not None:
            cpu.floor = procstats.tree_cpu_seconds(target.floor.pid, include_root=True)
        return cpu

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.service - other.service, self.chromium - other.chromium, self.floor - other.floor)


async def cpu_since(before: Cpu, target: BenchTarget) -> Cpu:
    """CPU used since ``before``, after a pause so the pool's background work (disposing
    used contexts, warming new ones) is counted with the captures that caused it."""
    await asyncio.sleep(SETTLE_SECONDS)
    return Cpu.read(target) - before


def add_cpu(record: dict[str, Any], service: Cpu | None, floor: Cpu | None, target: BenchTarget) -> None:
    """CPU per successful capture: less sensitive to a noisy machine than latency is."""

    def per(seconds: float, ok: int) -> float | None:
        return round(seconds * 1000 / ok, 1) if ok else None

    svc = per(service.service, record["ok"]) if service and target.service.pid else None
    chromium = per(service.chromium, record["ok"]) if service and target.service.pid else None
    floor_ms = per(floor.floor, record["floor_ok"] or 0) if floor else None
    record["service_cpu_ms_per_capture"] = svc
    record["service_chromium_cpu_ms_per_capture"] = chromium
    record["floor_cpu_ms_per_capture"] = floor_ms
    record["cpu_ratio"] = report.ratio((svc or 0) + (chromium or 0) if svc is not None else None, floor_ms)
