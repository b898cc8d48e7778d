"""Run the benchmark: fixture site, service, floors and naive baseline, then the scenarios.

There are up to three floors, each on a Chromium of its own (floor.py): cold
and warm on the fastest binary (the headless shell), and cold on full
Chromium when it is installed.  Each (page, concurrency) scenario runs the
floors and the service taking turns, so all see the same machine (the
background load of a small box drifts): at concurrency 1 request by request,
above it in chunks, A B B A (load.run_chunks).  Only at concurrency 1 is the
warm floor measured: with several workers, one worker's unclocked set-up would
run on another's clock.  A run is a closed loop of ``concurrency`` workers that
stops issuing requests after ``max_requests`` or ``max_seconds``, whichever
comes first; requests in flight always finish and are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from ..browser.executable import find_executable, find_full_chromium
from . import binaries, fixture_site, naive, phases, procstats, report, targets
from .floor import FloorBrowser, launch_floor
from .load import REQUEST_TIMEOUT, run_alternating, run_chunks, run_load
from .plan import BenchPlan
from .progress import Progress
from .report import Stats
from .service import ServiceHandle, ServiceOptions, remote_service, spawn_service
from .spec import PAGES, CaptureSpec
from .target import COLD, FULL, WARM, BenchTarget, Cpu, add_cpu, cpu_since

RESERVE_S = 45.0  # kept back from the scenarios for overload, a minimal soak and teardown


class _Budget:
    """Per-run time bounds; under --quick they shrink when a slow machine puts 3 minutes at risk."""

    def __init__(self, plan: BenchPlan, target: BenchTarget) -> None:
        self.plan = plan
        self.deadline = target.deadline
        self.runs_left = (1 + len(target.floors)) * plan.scenario_count

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
        run.wall_s = sum(s.latency_s for s in run.samples)  # one at a time: its clocked time (naive.py)
        naive_stats[page] = Stats.of(run)
        progress.done()

    scenarios: list[dict[str, Any]] = []
    for page, levels in plan.levels.items():
        spec = PAGES[page]
        if plan.warmup:
            kinds = _floor_kinds(plan, target, page, 1)
            progress.step(f"warm-up {page}", (1 + len(kinds)) * plan.warmup)
            for kind in kinds:
                await run_load(target.floor_call(spec, kind), 1, plan.warmup, float("inf"), progress.tick)
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


def _floor_kinds(plan: BenchPlan, target: BenchTarget, page: str, concurrency: int) -> list[str]:
    """The floors a scenario measures: cold always, warm at concurrency 1, full Chromium's on
    the pages the plan names."""
    wanted = [COLD, *([WARM] if concurrency == 1 else []), *([FULL] if page in plan.full_floor_pages else [])]
    return [kind for kind in wanted if kind in target.floors]


async def _paired_scenario(plan: BenchPlan, target: BenchTarget, progress: Progress, budget: _Budget,
                           spec: CaptureSpec, naive: Stats | None) -> dict[str, Any]:
    """Concurrency 1: the floors and the service take turns, request by request."""
    kinds = _floor_kinds(plan, target, spec.page, 1)
    sides = len(kinds) + 1
    progress.step(f"{' + '.join(kinds)} + service {spec.page} c=1 (alternating)", sides * plan.max_requests)
    before = Cpu.read(target)
    *floor_runs, service_run = await run_alternating(
        [*(target.floor_call(spec, kind) for kind in kinds), target.service_call(spec, plan.response_type)],
        plan.max_requests, sides * budget.seconds(), progress.tick, settle=procstats.machine_quiet)
    used = await cpu_since(before, target)  # each process tree only works for its own side
    budget.spent(len(target.floors) + 1)
    progress.done()
    floors = {kind: Stats.of(run) for kind, run in zip(kinds, floor_runs, strict=True)}
    record = report.scenario_record(spec.page, 1, Stats.of(service_run), floors.get(COLD), naive,
                                    warm=floors.get(WARM), full=floors.get(FULL))
    add_cpu(record, used, used, target)
    return record


async def _scenario(plan: BenchPlan, target: BenchTarget, progress: Progress, budget: _Budget,
                    spec: CaptureSpec, concurrency: int, naive: Stats | None) -> dict[str, Any]:
    """The floors and the service, each as a closed loop of ``concurrency`` workers, in
    alternating chunks (load.run_chunks): drift over the run hits every side alike."""
    kinds = _floor_kinds(plan, target, spec.page, concurrency)
    sides = len(kinds) + 1
    progress.step(f"{' + '.join(kinds)} + service {spec.page} c={concurrency} (alternating chunks)",
                  sides * plan.max_requests)
    before = Cpu.read(target)
    *floor_runs, service_run = await run_chunks(
        [*(target.floor_call(spec, kind) for kind in kinds), target.service_call(spec, plan.response_type)],
        concurrency, plan.max_requests, sides * budget.seconds(), progress.tick, settle=procstats.machine_quiet)
    used = await cpu_since(before, target)  # each process tree only works for its own side
    budget.spent(len(target.floors) + 1)
    progress.done()
    floors = {kind: Stats.of(run) for kind, run in zip(kinds, floor_runs, strict=True)}
    record = report.scenario_record(spec.page, concurrency, Stats.of(service_run), floors.get(COLD), naive,
                                    full=floors.get(FULL))
    add_cpu(record, used, used, target)
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
    floor_binaries = _floor_binaries() if opts.floor else {}
    progress = Progress(_steps(plan, floor_binaries), enabled=opts.progress)
    target: BenchTarget | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            site = await stack.enter_async_context(fixture_site.serve())
            progress.note(f"bench: fixture site on {site.base_url}; starting the service and "
                          f"{len(floor_binaries)} floor Chromium(s)")
            floor_tasks = {kind: asyncio.create_task(launch_floor(path)) for kind, path in floor_binaries.items()}
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
                floors = await _started(floor_tasks, stack)
            session = await stack.enter_async_context(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ))
            target = BenchTarget(site=site, service=handle, floors=floors, session=session,
                                 executable=opts.executable,
                                 deadline=begin + plan.budget_s if plan.budget_s else None)
            if handle.pid:
                target.service_rss = procstats.RssSampler(handle.pid)
                target.service_rss.start()
                stack.callback(target.service_rss.stop)
            floor_browser = floors.get(COLD)
            if floor_browser is not None:
                target.floor_rss = procstats.RssSampler(floor_browser.pid, root_in_tree=True)
                target.floor_rss.start()
                stack.callback(target.floor_rss.stop)
            service_binary = binaries.service_binary(handle.pid)  # while its browsers run
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
        "machine": _machine(floor_binaries.get(COLD) or opts.executable, load_start),
        "binaries": {
            "service": service_binary,
            "floor": binaries.describe(floor_binaries.get(COLD)),  # the cold and the warm floor
            "full_chromium_floor": binaries.describe(floor_binaries.get(FULL)),
            "naive": binaries.describe(naive.naive_executable()) if plan.naive_samples > 0 else None,
        },
        "config": {
            "service": opts.url or "spawned",
            "pool_size": target.service.pool_size,
            "max_queue": target.service.max_queue,
            "browsers": opts.service.browsers if not opts.url else None,
            "recycle_after": opts.service.recycle_after if not opts.url else None,
            "deadline_s": opts.service.deadline_seconds,
            "response_type": plan.response_type,
            "plan": asdict(plan),
            "pool_after_run": pool,
        },
        **results,
        "timings": progress.timings,
        "notes": target.notes,
    }
    document["targets"] = [asdict(t) for t in targets.evaluate(document)]
    return document


def _floor_binaries() -> dict[str, str]:
    """The floors' binaries by kind: cold and warm on what the service would auto-detect (the
    fastest binary installed, the headless shell), cold also on full Chromium if installed."""
    fastest = find_executable()
    found = {COLD: fastest, WARM: fastest}
    full = find_full_chromium()
    if full and os.path.realpath(full) != os.path.realpath(fastest):
        found[FULL] = full
    return found


async def _started(tasks: dict[str, asyncio.Task[FloorBrowser]],
                   stack: contextlib.AsyncExitStack) -> dict[str, FloorBrowser]:
    """Await every floor launch; each started one is closed with the stack, even if another failed."""
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    floors: dict[str, FloorBrowser] = {}
    for kind, task in tasks.items():
        if task.exception() is None:
            floors[kind] = task.result()
            stack.push_async_callback(floors[kind].close)
    for task in tasks.values():
        error = task.exception()
        if error is not None:
            raise error
    return floors


def _steps(plan: BenchPlan, floors: dict[str, str]) -> int:
    """How many progress steps the run will take (the bar's denominator)."""
    steps = len(plan.naive_pages) + (1 if plan.overload_waves else 0) + (1 if plan.soak_captures else 0) + 2
    for page, levels in plan.levels.items():
        steps += 1 if plan.warmup else 0
        for concurrency in levels:
            paired = concurrency == 1 and COLD in floors
            full = FULL in floors and page in plan.full_floor_pages
            steps += 1 if paired else 1 + (COLD in floors) + full
    return steps


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
        version = binaries.version(find_executable(executable))
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "python": platform.python_version(),
        "chromium": version,  # the cold floor's (see "binaries" for every side's)
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
