"""Run the benchmark: fixture site, service, floors and naive baseline, then the scenarios
(scenarios.py), then the results document with the machine, binaries and memory peaks.
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
from . import batches, binaries, fairness, fixture_site, naive, procstats, targets
from .floor import FloorBrowser, launch_floor
from .load import REQUEST_TIMEOUT
from .plan import BenchPlan
from .progress import Progress
from .scenarios import execute, progress_steps
from .service import ServiceHandle, ServiceOptions, remote_service, spawn_service
from .target import COLD, FULL, WARM, BenchTarget


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
    progress = Progress(progress_steps(plan, floor_binaries), enabled=opts.progress)
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
            if plan.fair_share and not opts.url:
                progress.note("bench: fair share (two attacker keys and a third, on a service of its own)")
                results["fair_share"] = await fairness.measure(site.port, workdir / "fair", opts.service, session)
                progress.note("bench: a 50-item batch against the same captures as sync requests (own service)")
                results["batch"] = await batches.measure(site.port, workdir / "batch", opts.service, session)
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
