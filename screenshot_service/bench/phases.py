"""The two phases after the scenarios: overload at 4x capacity, and the memory soak."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import procstats, report
from .load import run_burst, run_load
from .plan import BenchPlan
from .progress import Progress
from .report import Run, Sample, Stats
from .spec import PAGES
from .target import BenchTarget

QUIET_SECONDS = 1.0  # pause before an RSS checkpoint, so contexts are disposed and re-warmed


async def overload(plan: BenchPlan, target: BenchTarget, progress: Progress, pool_size: int,
                   scenarios: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Bursts of 4x (pool_size + max_queue) small-page requests: every excess one must be
    refused at once (503/429), and the admitted ones must not pay much for the crowd."""
    if plan.overload_waves <= 0:
        return None
    max_queue = target.service.max_queue if target.service.max_queue is not None else 16
    capacity = pool_size + max_queue  # running + waiting; anything beyond must be refused at once
    concurrent = 4 * capacity
    small = PAGES["small"]

    def p95_at(concurrency: int) -> float | None:
        row = next((s for s in scenarios if s["page"] == "small" and s["concurrency"] == concurrency), None)
        return row["p95_ms"] if row else None

    unloaded = p95_at(1)
    if unloaded is None:  # measure it: the overload is judged against the same service unloaded
        progress.step("service small c=1 (unloaded reference)", 10)
        unloaded = Stats.of(await run_load(target.service_call(small, plan.response_type), 1, 10,
                                           plan.max_seconds, progress.tick)).p95_ms
        progress.done()
    await asyncio.sleep(QUIET_SECONDS)
    progress.step(f"overload {concurrent} concurrent x {plan.overload_waves}", concurrent * plan.overload_waves)
    run = await run_burst(target.service_call(small, plan.response_type), concurrent, plan.overload_waves,
                          tick=progress.tick)
    progress.done()
    record = report.overload_record(capacity, concurrent, plan.overload_waves, run, unloaded, p95_at(pool_size))
    # The same burst against /healthz while the pool is busy: what any answer costs on this
    # machine right now (client, loopback, event loop) — the floor under the rejection latency.
    await asyncio.sleep(QUIET_SECONDS)
    busy = asyncio.ensure_future(run_load(target.service_call(small, plan.response_type), pool_size,
                                          pool_size, float("inf")))
    await asyncio.sleep(0.3)
    health = await run_burst(lambda: target.service.health(target.session), concurrent - pool_size, 1)
    await busy
    health_ms = [s.latency_s * 1000 for s in health.samples]
    record["healthz_burst_p50_ms"] = round(report.percentile(health_ms, 50), 1)
    record["healthz_burst_max_ms"] = round(max(health_ms), 1)
    return record


async def settle(target: BenchTarget, timeout: float = 10.0) -> bool:
    """Wait until the pool is idle and fully warm again (per /readyz), so every RSS checkpoint
    sees the same set of processes: Chromium's RSS swings by half while contexts are replaced."""
    deadline = time.perf_counter() + timeout
    await asyncio.sleep(0.2)
    while time.perf_counter() < deadline:
        try:
            stats = await target.service.pool_stats(target.session)
        except Exception:
            stats = {}
        if not stats:
            break  # no pool stats: fall back to a plain pause
        if stats.get("in_use") == 0 and stats.get("warm", 0) >= stats.get("size", 1):
            await asyncio.sleep(0.3)  # the last renderer finishes starting up
            return True
        await asyncio.sleep(0.1)
    await asyncio.sleep(QUIET_SECONDS)
    return False


async def _pool(target: BenchTarget) -> dict[str, int]:
    try:
        return await target.service.pool_stats(target.session)
    except Exception:  # a service without pool stats (or unreachable): counts unknown
        return {}


def _delta(before: dict[str, int], after: dict[str, int], key: str) -> int | None:
    if key not in before or key not in after:
        return None
    return after[key] - before[key]


def _worse(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


async def soak(plan: BenchPlan, target: BenchTarget, progress: Progress, pool_size: int) -> dict[str, Any] | None:
    """Many small-page captures at pool_size concurrency, with RSS read at quiet checkpoints
    (before, then every ``soak_segment`` captures); growth compares the first and the last."""
    if plan.soak_captures <= 0:
        return None
    sampler = target.service_rss
    call = target.service_call(PAGES["small"], plan.response_type)
    checkpoints: list[dict[str, float | None]] = []

    async def checkpoint(captures: int) -> None:
        if sampler is None:
            return
        await settle(target)
        snap = await asyncio.to_thread(sampler.snapshot)
        checkpoints.append({"captures": captures, "service_mib": procstats.mib(snap.service_kib),
                            "chromium_mib": procstats.mib(snap.chromium_kib),
                            "chromium_pss_mib": procstats.mib(snap.chromium_pss_kib)})

    limit = plan.soak_seconds
    if limit is not None and target.deadline is not None:  # whatever the budget leaves
        limit = max(5.0, min(limit, target.deadline - time.perf_counter()))
    progress.step(f"soak {plan.soak_captures} captures", plan.soak_captures)
    await checkpoint(0)
    pool_before = await _pool(target)
    samples: list[Sample] = []
    wall = 0.0
    started = time.perf_counter()
    while len(samples) < plan.soak_captures:
        if limit is not None and time.perf_counter() - started > limit:
            break
        segment = min(plan.soak_segment, plan.soak_captures - len(samples))
        left = float("inf") if limit is None else max(0.0, limit - (time.perf_counter() - started))
        run = await run_load(call, pool_size, segment, left, progress.tick)
        samples += run.samples
        wall += run.wall_s
        await checkpoint(len(samples))
    progress.done()
    pool_after = await _pool(target)

    stats = Stats.of(Run(samples, wall))
    soak: dict[str, Any] = {
        "captures": len(samples),
        "concurrency": pool_size,
        "target_captures": plan.soak_captures,
        "time_bounded": limit is not None and len(samples) < plan.soak_captures,
        "seconds": round(time.perf_counter() - started, 1),
        "ok": stats.ok,
        "errors": stats.errors,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "throughput_per_s": stats.throughput_per_s,
        "slowest_ms": stats.slowest_ms,
        # Chromium replaced during the soak: planned (recycle_after) and after a crash or hang.
        "recycles": _delta(pool_before, pool_after, "recycles"),
        "restarts": _delta(pool_before, pool_after, "restarts"),
        "checkpoints": checkpoints,
    }
    if len(checkpoints) >= 2:
        first, last = checkpoints[0], checkpoints[-1]
        total_first = (first["service_mib"] or 0) + (first["chromium_mib"] or 0)
        total_last = (last["service_mib"] or 0) + (last["chromium_mib"] or 0)
        soak.update({
            "service_rss_first_mib": first["service_mib"], "service_rss_last_mib": last["service_mib"],
            "chromium_rss_first_mib": first["chromium_mib"], "chromium_rss_last_mib": last["chromium_mib"],
            "service_rss_growth_pct": report.growth_pct(first["service_mib"] or 0, last["service_mib"] or 0),
            "chromium_rss_growth_pct": report.growth_pct(first["chromium_mib"] or 0, last["chromium_mib"] or 0),
            "chromium_pss_first_mib": first["chromium_pss_mib"], "chromium_pss_last_mib": last["chromium_pss_mib"],
            "chromium_pss_growth_pct": report.growth_pct(first["chromium_pss_mib"] or 0,
                                                         last["chromium_pss_mib"] or 0),
            "total_rss_growth_pct": report.growth_pct(total_first, total_last),
            # The worse of the two: Chromium's RSS is 30x the service's, so a sum would hide a
            # leak in the service process; recycling (recycle_after) bounds Chromium's.
            "rss_growth_pct": _worse(
                report.growth_pct(first["service_mib"] or 0, last["service_mib"] or 0),
                report.growth_pct(first["chromium_mib"] or 0, last["chromium_mib"] or 0)),
        })
    else:
        soak.update({"service_rss_first_mib": None, "service_rss_last_mib": None,
                     "chromium_rss_first_mib": None, "chromium_rss_last_mib": None,
                     "service_rss_growth_pct": None, "chromium_rss_growth_pct": None,
                     "total_rss_growth_pct": None, "rss_growth_pct": None})
    return soak


JOBS_BACKLOG = 20  # jobs queued before the sync requests are timed
JOBS_BACKLOG_SAMPLES = 8
JOBS_DRAIN_TIMEOUT = 120.0  # the backlog must also finish: jobs are deprioritised, not starved


async def jobs_backlog(plan: BenchPlan, target: BenchTarget, progress: Progress,
                       scenarios: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Step 5's ratio: small-page sync latency while a backlog of jobs runs, against unloaded.

    Jobs may use at most ``[jobs] workers`` browser slots, so sync requests should keep most of
    their latency; the ratio shows how much the backlog's CPU still costs them on this machine.
    """
    unloaded = next((s for s in scenarios if s["page"] == "small" and s["concurrency"] == 1), None)
    if unloaded is None:
        return None
    small = PAGES["small"]
    service = target.service
    body = {"url": target.site.base_url + small.path, **small.query()}
    progress.step(f"jobs backlog {JOBS_BACKLOG} + sync small c=1", JOBS_BACKLOG_SAMPLES)
    headers = {"X-API-Key": service.api_key}
    started = time.perf_counter()
    job_ids: list[str] = []
    for _ in range(JOBS_BACKLOG):
        async with target.session.post(service.base_url + "/v1/jobs", json=body, headers=headers) as response:
            if response.status == 202:
                job_ids.append((await response.json())["id"])
    run = await run_load(target.service_call(small, plan.response_type), 1, JOBS_BACKLOG_SAMPLES,
                         plan.max_seconds, progress.tick)
    progress.done()
    outcomes = await _wait_jobs(target, job_ids, headers)
    stats = Stats.of(run)
    return {
        "jobs_queued": len(job_ids),
        "jobs_succeeded": outcomes.get("succeeded", 0),
        "jobs_outcomes": outcomes,
        "jobs_drained_s": round(time.perf_counter() - started, 1),
        "sync_p50_ms": stats.p50_ms,
        "sync_p95_ms": stats.p95_ms,
        "unloaded_p50_ms": unloaded["p50_ms"],
        "sync_latency_ratio": report.ratio(stats.p50_ms, unloaded["p50_ms"]),
        "slowest_ms": stats.slowest_ms,
        "errors": stats.errors,
    }


async def _wait_jobs(target: BenchTarget, job_ids: list[str], headers: dict[str, str]) -> dict[str, int]:
    """Poll until every job has ended (or the timeout): how many ended in each status."""
    deadline = time.perf_counter() + JOBS_DRAIN_TIMEOUT
    pending = list(job_ids)
    outcomes: dict[str, int] = {}
    while pending and time.perf_counter() < deadline:
        still = []
        for job_id in pending:
            async with target.session.get(f"{target.service.base_url}/v1/jobs/{job_id}",
                                          headers=headers) as response:
                status = (await response.json()).get("status") if response.status == 200 else "lost"
            if status in ("queued", "running"):
                still.append(job_id)
            else:
                outcomes[status] = outcomes.get(status, 0) + 1
        pending = still
        if pending:
            await asyncio.sleep(0.5)
    if pending:
        outcomes["unfinished"] = len(pending)
    return outcomes
