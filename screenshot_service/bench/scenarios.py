"""The scenarios of a benchmark run, and the phases after them (phases.py).

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

import time
from typing import Any

from . import diffs, extract, phases, procstats, report, thumbs, upstream
from .load import run_alternating, run_chunks, run_load
from .plan import BenchPlan
from .progress import Progress
from .report import Stats
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
            paired = concurrency == 1 and target.floor is not None
            scenarios.append(await _scenario(plan, target, progress, budget, spec, concurrency, naive, paired=paired))
    for page, stats in naive_stats.items():  # naive measured for a page that had no c=1 scenario
        if not any(s["page"] == page and s["concurrency"] == 1 for s in scenarios):
            target.notes.append(f"naive {page}: p50 {stats.p50_ms} ms, {stats.throughput_per_s}/s (no c=1 scenario)")

    results: dict[str, Any] = {"scenarios": scenarios}
    results["thumbnail"] = await thumbs.measure(plan, target, progress)
    results["extract"] = await extract.measure(plan, target, progress)
    results["upstream_proxy"] = await upstream.measure(plan, target, progress)
    results["diff"] = await diffs.measure(plan, target, progress)
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


async def _scenario(plan: BenchPlan, target: BenchTarget, progress: Progress, budget: _Budget,
                    spec: CaptureSpec, concurrency: int, naive: Stats | None, *, paired: bool) -> dict[str, Any]:
    """The floors and the service take turns: ``paired`` (concurrency 1) request by request
    (load.run_alternating), else each as a closed loop of ``concurrency`` workers in alternating
    chunks (load.run_chunks): drift over the run hits every side alike."""
    kinds = _floor_kinds(plan, target, spec.page, concurrency)
    sides = len(kinds) + 1
    how = "alternating" if paired else "alternating chunks"
    progress.step(f"{' + '.join(kinds)} + service {spec.page} c={concurrency} ({how})", sides * plan.max_requests)
    calls = [*(target.floor_call(spec, kind) for kind in kinds), target.service_call(spec, plan.response_type)]
    seconds = sides * budget.seconds()
    before = Cpu.read(target)
    if paired:
        runs = await run_alternating(calls, plan.max_requests, seconds, progress.tick, settle=procstats.machine_quiet)
    else:
        runs = await run_chunks(calls, concurrency, plan.max_requests, seconds, progress.tick,
                                settle=procstats.machine_quiet)
    *floor_runs, service_run = runs
    used = await cpu_since(before, target)  # each process tree only works for its own side
    budget.spent(len(target.floors) + 1)
    progress.done()
    floors = {kind: Stats.of(run) for kind, run in zip(kinds, floor_runs, strict=True)}
    record = report.scenario_record(spec.page, concurrency, Stats.of(service_run), floors.get(COLD), naive,
                                    warm=floors.get(WARM), full=floors.get(FULL))
    add_cpu(record, used, target)
    return record


def progress_steps(plan: BenchPlan, floors: dict[str, str]) -> int:
    """How many progress steps the run will take (the bar's denominator)."""
    steps = len(plan.naive_pages) + (1 if plan.overload_waves else 0) + (1 if plan.soak_captures else 0) + 2
    steps += len(thumbs.pages(plan)) + len(extract.pages(plan)) + len(upstream.pages(plan)) + len(diffs.pages(plan))
    for page, levels in plan.levels.items():
        steps += 1 if plan.warmup else 0
        for concurrency in levels:
            paired = concurrency == 1 and COLD in floors
            full = FULL in floors and page in plan.full_floor_pages
            steps += 1 if paired else 1 + (COLD in floors) + full
    return steps
