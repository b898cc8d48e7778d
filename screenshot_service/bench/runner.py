"""Run the benchmark: fixture site, service, floor and naive baseline, then the scenarios.

Each (page, concurrency) scenario runs the floor and then the service back to
back, so both see the same machine (the background load of a small box
drifts); at concurrency 1 they take turns request by request.  A run is a
closed loop of ``concurrency`` workers that stops issuing requests after
``max_requests`` or ``max_seconds``, whichever comes first; requests in flight
always finish and are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from . import fixture_site, phases, procstats, report
from .floor import launch_floor
from .load import REQUEST_TIMEOUT, run_alternating, run_load
from .plan import BenchPlan
from .progress import Progress
from .report import Stats
from .service import ServiceHandle, ServiceOptions, remote_service, spawn_service
from .spec import PAGES, CaptureSpec
from .target import BenchTarget, Cpu, add_cpu, cpu_since

RESERVE_S = 45.0  # kept back from the scenarios for overload, a minimal soak and teardown


class _Budget:
    """Per-run time bounds; under --quick they shrink when a slow machine puts 3 minutes at risk."""

    def __init__(self, plan: BenchPlan, target: BenchTarget) -> None:
        self.plan = plan
        self.deadline = target.deadline
        self.runs_left = (2 if target.floor else 1) * plan.scenario_count

    def seconds(self) -> float:
        if self.deadline is None:
            return self.plan.max_seconds
        spare = self.deadline - time.perf_counter() - RESERVE_S
        return max(1.0, min(self.plan.max_seconds, spare / max(1, self.runs_left)))

    def spent(self, runs: int = 1) -> None:
        self.runs_left -= runs


async def execute(plan: BenchPlan, target: BenchTarget, progress: Progress) -> dict[str, Any]:
    """All phases against a ready target; returns the results document (without targets)."""
    pool_size = target.service.pool_size or 4
    budget = _Budget(plan, target)

    naive_stats: dict[str, Stats] = {}
    for page in plan.naive_pages:
        if plan.naive_samples <= 0 or page not in plan.levels:
            continue
        progress.step(f"naive {page} c=1", plan.naive_samples)
        run = await run_load(target.naive_call(PAGES[page]), 1, plan.naive_samples, float("inf"), progress.tick)
        naive_stats[page] = Stats.of(run)
        progress.done()

    scenarios: list[dict[str, Any]] = []
    for page, levels in plan.levels.items():
        spec = PAGES[page]
        if plan.warmup:
            progress.step(f"warm-up {page}", 2 * plan.warmup)
            if target.floor is not None:
                await run_load(target.floor_call(spec), 1, plan.warmup, float("inf"), progress.tick)
            await run_load(target.service_call(spec, plan.response_type), 1, plan.warmup, float("inf"),
                           progress.tick)
            progress.done()
        for concurrency in levels:
            naive = naive_stats.get(page) if concurrency == 1 else None
            if concurrency == 1 and target.floor is not None:
                scenarios.append(await _paired_scenario(plan, target, progress, budget, spec, naive))
            else:
                scenarios.append(await _scenario(plan, target, progress, budget, spec, concurrency, naive))
    for page, stats in naive_stats.items():  # naive measured for a page that had no c=1 scenario
        if not any(s["page"] == page and s["concurrency"] == 1 for s in scenarios):
            target.notes.append(f"naive {page}: p50 {stats.p50_ms} ms, {stats.throughput_per_s}/s (no c=1 scenario)")

    results: dict[str, Any] = {"scenarios": scenarios}
    results["overload"] = await phases.overload(plan, target, progress, pool_size, scenarios)
    results["jobs_backlog"] = await phases.jobs_backlog(plan, target, progress, scenarios)
    soak = await phases.soak(plan, target, progress, pool_size)
    results["soak"] = soak
    results["rss_growth_pct"] = soak.get("rss_growth_pct") if soak else None
    return results


async def _paired_scenario(plan: BenchPlan, target: BenchTarget, progress: Progress, budget: _Budget,
                           spec: CaptureSpec, naive: Stats | None) -> dict[str, Any]:
    """Concurrency 1: floor and service take turns, request by request."""
    progress.step(f"floor + service {spec.page} c=1 (alternating)", 2 * plan.max_requests)
    before = Cpu.read(target)
    floor_run, service_run = await run_alternating(
        [target.floor_call(spec), target.service_call(spec, plan.response_type)],
        plan.max_requests, 2 * budget.seconds(), progress.tick)
    used = await cpu_since(before, target)  # each process tree only works for its own side
    budget.spent(2)
    progress.done()
    record = report.scenario_record(spec.page, 1, Stats.of(service_run), Stats.of(floor_run), naive)
    add_cpu(record, used, used, target)
    return record


async def _scenario(plan: BenchPlan, target: BenchTarget, progress: Progress, budget: _Budget,
                    spec: CaptureSpec, concurrency: int, naive: Stats | None) -> dict[str, Any]:
    """The floor, then the service, each as a closed loop of ``concurrency`` workers."""
    floor_stats = floor_cpu = None
    if target.floor is not None:
        progress.step(f"floor   {spec.page} c={concurrency}", plan.max_requests)
        before = Cpu.read(target)
        floor_stats = Stats.of(await run_load(target.floor_call(spec), concurrency, plan.max_requests,
                                              budget.seconds(), progress.tick))
        floor_cpu = await cpu_since(before, target)
        budget.spent()
        progress.done()
    progress.step(f"service {spec.page} c={concurrency}", plan.max_requests)
    before = Cpu.read(target)
    service_stats = Stats.of(await run_load(target.service_call(spec, plan.response_type), concurrency,
                                            plan.max_requests, budget.seconds(), progress.tick))
    service_cpu = await cpu_since(before, target)
    budget.spent()
    progress.done()
    record = report.scenario_record(spec.page, concurrency, service_stats, floor_stats, naive)
    add_cpu(record, service_cpu, floor_cpu, target)
    return record


@dataclass(frozen=True)
class RunOptions:
    plan: BenchPlan
    service: ServiceOptions
    out: Path | None = None
    url: str | None = None
    api_key: str | None = None
    pid: int | None = None
    executable: str = ""
    floor: bool = True
    keep: bool = False
    progress: bool = True


async def run_bench(opts: RunOptions) -> dict[str, Any]:
    plan = opts.plan
    started_at = datetime.now(UTC)
    begin = time.perf_counter()
    load_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="screenshot-bench-"))
    paired = sum(1 for levels in plan.levels.values() if 1 in levels) if opts.floor else 0
    steps = (len(plan.naive_pages) + (len(plan.levels) if plan.warmup else 0) + 2 * plan.scenario_count - paired
             + (1 if plan.overload_waves else 0) + (1 if plan.soak_captures else 0) + 1)
    progress = Progress(steps, enabled=opts.progress)
    target: BenchTarget | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            site = await stack.enter_async_context(fixture_site.serve())
            progress.note(f"bench: fixture site on {site.base_url}; starting service and floor Chromium")
            floor_task = asyncio.create_task(launch_floor(opts.executable)) if opts.floor else None
            try:
                if opts.url:
                    if not opts.api_key:
                        raise SystemExit("bench: --url needs --api-key (or SCREENSHOT_BENCH_API_KEY)")
                    handle = await remote_service(opts.url, opts.api_key, opts.service.max_queue)
                    handle.pid = opts.pid
                else:
                    handle = await stack.enter_async_context(
                        spawn_service(workdir / "service", site.port, opts.service))
            finally:
                floor_browser = await floor_task if floor_task is not None else None
                if floor_browser is not None:
                    stack.push_async_callback(floor_browser.close)
            session = await stack.enter_async_context(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ))
            target = BenchTarget(site=site, service=handle, floor=floor_browser, session=session,
                                 executable=opts.executable,
                                 deadline=begin + plan.budget_s if plan.budget_s else None)
            if handle.pid:
                target.service_rss = procstats.RssSampler(handle.pid)
                target.service_rss.start()
                stack.callback(target.service_rss.stop)
            if floor_browser is not None:
                target.floor_rss = procstats.RssSampler(floor_browser.pid, root_in_tree=True)
                target.floor_rss.start()
                stack.callback(target.floor_rss.stop)
            results = await execute(plan, target, progress)
            pool = await _pool_stats(handle, session)
            ours = procstats.descendants(os.getpid())  # service, its Chromium, the floor's
        # the samplers have stopped (and read VmHWM) once the stack is closed
        leftovers = await _reap(ours)
        if leftovers:
            target.notes.append(f"killed {len(leftovers)} process(es) still running after teardown: {leftovers}")
    finally:
        progress.close()
        if opts.keep:
            progress.note(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    service_rss, floor_rss = target.service_rss, target.floor_rss
    results["memory"] = {
        "service_peak_mib": procstats.mib(service_rss.peak_service_kib) if service_rss else None,
        "chromium_peak_mib": procstats.mib(service_rss.peak_chromium_kib) if service_rss else None,
        "chromium_peak_pss_mib": procstats.mib(service_rss.peak_chromium_pss_kib) if service_rss else None,
        "chromium_peak_processes": service_rss.peak_chromium_processes if service_rss else None,
        "floor_chromium_peak_mib": procstats.mib(floor_rss.peak_total_kib) if floor_rss else None,
        "floor_chromium_peak_pss_mib": procstats.mib(floor_rss.peak_chromium_pss_kib) if floor_rss else None,
        "method": "RSS: sum of VmRSS over the /proc descendants of the service (Chromium) sampled every "
                  "0.25 s, service peak = VmHWM; PSS (shared pages split fairly) sampled every 1 s",
    }
    document: dict[str, Any] = {
        "version": 1,
        "mode": plan.mode,
        "created_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(time.perf_counter() - begin, 1),
        "machine": _machine(opts.executable, load_start),
        "config": {
            "service": opts.url or "spawned",
            "pool_size": target.service.pool_size,
            "max_queue": target.service.max_queue,
            "browsers": opts.service.browsers if not opts.url else None,
            "recycle_after": opts.service.recycle_after if not opts.url else None,
            "response_type": plan.response_type,
            "plan": asdict(plan),
            "pool_after_run": pool,
        },
        **results,
        "timings": progress.timings,
        "notes": target.notes,
    }
    document["targets"] = [asdict(t) for t in report.evaluate(document)]
    return document


async def _reap(pids: list[int], grace: float = 3.0) -> list[int]:
    """Processes this run started that outlived its teardown: SIGKILLed, and listed."""
    deadline = time.perf_counter() + grace
    alive = pids
    while alive and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        alive = [pid for pid in alive if procstats.alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return alive


async def _pool_stats(handle: ServiceHandle, session: aiohttp.ClientSession) -> dict[str, int] | None:
    with contextlib.suppress(Exception):
        return await handle.pool_stats(session)
    return None


def _machine(executable: str, load_start: tuple[float, float, float]) -> dict[str, Any]:
    mem_kib = None
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    version = None
    with contextlib.suppress(Exception):
        from ..browser.launcher import find_executable

        version = subprocess.run([find_executable(executable), "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "python": platform.python_version(),
        "chromium": version,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
