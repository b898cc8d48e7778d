"""From raw samples to results.json, the stdout table and the PASS/FAIL target lines.

Everything here is pure (no I/O but ``write_results``), so the test can feed it
synthetic samples and check the arithmetic.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Fields every scenario record carries (the contract of results.json).
SCENARIO_FIELDS = (
    "name", "page", "concurrency", "requests", "ok", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
    "throughput_per_s", "errors", "floor_p50_ms", "floor_p95_ms", "floor_throughput_per_s", "floor_errors",
    "latency_ratio", "throughput_ratio", "naive_p50_ms", "naive_throughput_per_s",
)

# The Step 7 targets.
LATENCY_RATIO_MAX = 1.25  # small page, concurrency 1: service p50 / floor p50
THROUGHPUT_RATIO_MIN = 0.9  # small page, highest concurrency: service / floor
REJECT_MS_MAX = 50.0  # every overload rejection
OVERLOAD_P95_FACTOR_MAX = 2.0  # admitted p95 under overload / unloaded p95
RSS_GROWTH_PCT_MAX = 10.0
NAIVE_SPEEDUP_MIN = 5.0
BACKLOG_RATIO_MAX = 2.0  # Step 5: a job backlog may at most double sync latency


@dataclass(frozen=True)
class Sample:
    """One request: its outcome ("200", "503", an exception name, "ok") and how long it took."""

    status: str
    latency_s: float
    ok: bool


@dataclass
class Run:
    """Samples of one load run and the wall-clock time it took."""

    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


@dataclass(frozen=True)
class Stats:
    requests: int
    ok: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    throughput_per_s: float
    errors: dict[str, int]

    @classmethod
    def of(cls, run: Run) -> Stats:
        """Latency percentiles over successful requests; throughput = successes per wall second."""
        good = [s.latency_s for s in run.samples if s.ok]
        errors = Counter(s.status for s in run.samples if not s.ok)

        def pct(q: float) -> float | None:
            return _ms(percentile(good, q)) if good else None

        return cls(
            requests=len(run.samples),
            ok=len(good),
            p50_ms=pct(50),
            p95_ms=pct(95),
            p99_ms=pct(99),
            mean_ms=_ms(sum(good) / len(good)) if good else None,
            max_ms=_ms(max(good)) if good else None,
            throughput_per_s=round(len(good) / run.wall_s, 3) if run.wall_s > 0 else 0.0,
            errors=dict(sorted(errors.items())),
        )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def scenario_record(page: str, concurrency: int, service: Stats, floor: Stats | None = None,
                    naive: Stats | None = None) -> dict[str, Any]:
    return {
        "name": f"{page}-c{concurrency}",
        "page": page,
        "concurrency": concurrency,
        "requests": service.requests,
        "ok": service.ok,
        "p50_ms": service.p50_ms,
        "p95_ms": service.p95_ms,
        "p99_ms": service.p99_ms,
        "mean_ms": service.mean_ms,
        "throughput_per_s": service.throughput_per_s,
        "errors": service.errors,
        "floor_requests": floor.requests if floor else 0,
        "floor_ok": floor.ok if floor else 0,
        "floor_p50_ms": floor.p50_ms if floor else None,
        "floor_p95_ms": floor.p95_ms if floor else None,
        "floor_throughput_per_s": floor.throughput_per_s if floor else None,
        "floor_errors": floor.errors if floor else {},
        "latency_ratio": ratio(service.p50_ms, floor.p50_ms if floor else None),
        "throughput_ratio": ratio(service.throughput_per_s, floor.throughput_per_s if floor else None),
        "naive_p50_ms": naive.p50_ms if naive else None,
        "naive_throughput_per_s": naive.throughput_per_s if naive else None,
    }


def overload_record(capacity: int, concurrent: int, waves: int, run: Run,
                    unloaded_p95_ms: float | None, saturated_p95_ms: float | None) -> dict[str, Any]:
    """Overload at 4x capacity: who was rejected, how fast, and what admitted requests paid."""
    rejected = [s for s in run.samples if s.status in ("503", "429")]
    admitted = Stats.of(Run([s for s in run.samples if s.ok], run.wall_s))
    reject_ms = [s.latency_s * 1000 for s in rejected]
    other = Counter(s.status for s in run.samples if not s.ok and s.status not in ("503", "429"))
    return {
        "capacity": capacity,
        "concurrent": concurrent,
        "waves": waves,
        "requests": len(run.samples),
        "admitted": admitted.ok,
        "rejected": len(rejected),
        "rejected_by_status": dict(sorted(Counter(s.status for s in rejected).items())),
        "other_errors": dict(sorted(other.items())),
        "reject_p50_ms": round(percentile(reject_ms, 50), 1) if reject_ms else None,
        "reject_p95_ms": round(percentile(reject_ms, 95), 1) if reject_ms else None,
        "reject_max_ms": round(max(reject_ms), 1) if reject_ms else None,
        "rejected_over_50ms": sum(1 for ms in reject_ms if ms >= REJECT_MS_MAX),
        "admitted_p50_ms": admitted.p50_ms,
        "admitted_p95_ms": admitted.p95_ms,
        "unloaded_p95_ms": unloaded_p95_ms,
        "saturated_p95_ms": saturated_p95_ms,
        "admitted_p95_ratio": ratio(admitted.p95_ms, unloaded_p95_ms),
        "admitted_p95_vs_saturated": ratio(admitted.p95_ms, saturated_p95_ms),
    }


def growth_pct(first: float, last: float) -> float | None:
    return round((last - first) / first * 100.0, 2) if first > 0 else None


# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool | None  # None: not measured in this run
    detail: str

    def line(self) -> str:
        verdict = "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")
        return f"{verdict}  {self.name}: {self.detail}"


def _scenario(results: Mapping[str, Any], page: str, concurrency: int | None) -> Mapping[str, Any] | None:
    rows = [s for s in results.get("scenarios", []) if s.get("page") == page]
    if not rows:
        return None
    if concurrency is None:
        return max(rows, key=lambda s: s["concurrency"])
    return next((s for s in rows if s["concurrency"] == concurrency), None)


def evaluate(results: Mapping[str, Any]) -> list[Target]:
    """The Step 7 targets, judged from a results document (as written to results.json)."""
    targets: list[Target] = []

    one = _scenario(results, "small", 1)
    value = one.get("latency_ratio") if one else None
    targets.append(Target(
        f"small-page latency at concurrency 1 <= {LATENCY_RATIO_MAX}x floor",
        None if value is None else value <= LATENCY_RATIO_MAX,
        "not measured" if not one or value is None else
        f"service p50 {one['p50_ms']} ms / floor p50 {one['floor_p50_ms']} ms = {value}x",
    ))

    top = _scenario(results, "small", None)
    value = top.get("throughput_ratio") if top else None
    targets.append(Target(
        f"saturated throughput >= {THROUGHPUT_RATIO_MIN}x floor",
        None if value is None else value >= THROUGHPUT_RATIO_MIN,
        "not measured" if not top or value is None else
        f"small page at concurrency {top['concurrency']}: {top['throughput_per_s']}/s vs floor "
        f"{top['floor_throughput_per_s']}/s = {value}x",
    ))

    overload = results.get("overload") or {}
    if overload.get("rejected"):
        slow = overload.get("rejected_over_50ms", 0)
        targets.append(Target(
            f"overload rejections < {REJECT_MS_MAX:g} ms each",
            slow == 0 and not overload.get("other_errors"),
            f"{overload['rejected']} rejected {overload['rejected_by_status']}, max "
            f"{overload['reject_max_ms']} ms, {slow} at or over {REJECT_MS_MAX:g} ms"
            + (f", other errors {overload['other_errors']}" if overload.get("other_errors") else ""),
        ))
    else:
        targets.append(Target(f"overload rejections < {REJECT_MS_MAX:g} ms each",
                              None if not overload else False,
                              "not measured" if not overload else "4x overload produced no 503/429 at all"))
    value = overload.get("admitted_p95_ratio")
    targets.append(Target(
        f"overload: admitted p95 <= {OVERLOAD_P95_FACTOR_MAX:g}x unloaded p95",
        None if value is None else value <= OVERLOAD_P95_FACTOR_MAX,
        "not measured" if value is None else
        f"admitted p95 {overload['admitted_p95_ms']} ms / unloaded (concurrency 1) p95 "
        f"{overload['unloaded_p95_ms']} ms = {value}x (vs saturated p95: "
        f"{overload.get('admitted_p95_vs_saturated')}x)",
    ))

    backlog = results.get("jobs_backlog") or {}
    value = backlog.get("sync_latency_ratio")
    # ... and the backlog itself still finishes: deprioritised, not starved.
    succeeded = backlog.get("jobs_succeeded", backlog.get("jobs_queued"))
    drained = f"; {succeeded} of them succeeded in {backlog['jobs_drained_s']} s" if "jobs_drained_s" in backlog else ""
    targets.append(Target(
        f"sync latency with a job backlog <= {BACKLOG_RATIO_MAX:g}x unloaded, and the jobs finish (Step 5)",
        None if value is None else value <= BACKLOG_RATIO_MAX and succeeded == backlog.get("jobs_queued"),
        "not measured" if value is None else
        f"{backlog['jobs_queued']} jobs queued: sync p50 {backlog['sync_p50_ms']} ms / unloaded "
        f"{backlog['unloaded_p50_ms']} ms = {value}x{drained}",
    ))

    soak = results.get("soak") or {}
    value = results.get("rss_growth_pct")
    targets.append(Target(
        f"RSS growth < {RSS_GROWTH_PCT_MAX:g}% over the soak",
        None if value is None else value < RSS_GROWTH_PCT_MAX,
        "not measured" if value is None else
        f"{value}% over {soak.get('captures')} captures (the worse of service process "
        f"{soak.get('service_rss_growth_pct')}% and its Chromium {soak.get('chromium_rss_growth_pct')}%)"
        + ("" if soak.get("captures", 0) >= 500 else " — fewer than 500 captures"),
    ))

    value = None
    if one and one.get("naive_throughput_per_s"):
        value = ratio(one["throughput_per_s"], one["naive_throughput_per_s"])
    targets.append(Target(
        f"service >= {NAIVE_SPEEDUP_MIN:g}x naive throughput",
        None if value is None else value >= NAIVE_SPEEDUP_MIN,
        "not measured" if value is None or not one else
        f"small page at concurrency 1: {one['throughput_per_s']}/s vs naive "
        f"{one['naive_throughput_per_s']}/s = {value}x",
    ))
    return targets


# -- output ------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items()) or "-"
    return str(value)


def _with_total_cpu(row: Mapping[str, Any]) -> Mapping[str, Any]:
    svc, chromium = row.get("service_cpu_ms_per_capture"), row.get("service_chromium_cpu_ms_per_capture")
    total = None if svc is None or chromium is None else f"{svc:.0f}+{chromium:.0f}"
    return {**row, "service_total_cpu_ms": total}


def table(scenarios: Iterable[Mapping[str, Any]]) -> str:
    columns = [
        ("scenario", "name"), ("conc", "concurrency"), ("n", "requests"), ("p50 ms", "p50_ms"),
        ("p95 ms", "p95_ms"), ("p99 ms", "p99_ms"), ("req/s", "throughput_per_s"), ("errors", "errors"),
        ("floor p50", "floor_p50_ms"), ("floor req/s", "floor_throughput_per_s"),
        ("lat x", "latency_ratio"), ("thr x", "throughput_ratio"), ("naive p50", "naive_p50_ms"),
        ("cpu ms svc+chr", "service_total_cpu_ms"), ("cpu ms floor", "floor_cpu_ms_per_capture"),
    ]
    rows = [[title for title, _ in columns]]
    rows += [[_cell(_with_total_cpu(s).get(key)) for _, key in columns] for s in scenarios]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: Mapping[str, Any]) -> str:
    """The table plus the overload, soak and memory lines, as printed on stdout."""
    out = [table(results.get("scenarios", []))]
    overload = results.get("overload")
    if overload:
        out.append(
            f"\noverload: {overload['concurrent']} concurrent x {overload['waves']} wave(s) against capacity "
            f"{overload['capacity']}: {overload['admitted']} admitted (p95 {overload['admitted_p95_ms']} ms), "
            f"{overload['rejected']} rejected {overload['rejected_by_status']} "
            f"(p50 {overload['reject_p50_ms']} ms, max {overload['reject_max_ms']} ms)"
            + (f", other {overload['other_errors']}" if overload["other_errors"] else "")
            + (f"; a /healthz burst alongside busy captures: p50 {overload.get('healthz_burst_p50_ms')} ms, "
               f"max {overload.get('healthz_burst_max_ms')} ms" if "healthz_burst_p50_ms" in overload else "")
        )
    soak = results.get("soak")
    if soak:
        out.append(
            f"soak: {soak.get('captures')} captures ({soak.get('errors') or 'no errors'}) at "
            f"{soak.get('throughput_per_s')}/s; "
            f"RSS service {soak.get('service_rss_first_mib')} -> {soak.get('service_rss_last_mib')} MiB, "
            f"Chromium {soak.get('chromium_rss_first_mib')} -> {soak.get('chromium_rss_last_mib')} MiB "
            f"(PSS {soak.get('chromium_pss_first_mib')} -> {soak.get('chromium_pss_last_mib')} MiB); "
            f"growth {results.get('rss_growth_pct')}% (the worse of the two)"
        )
    memory = results.get("memory")
    if memory:
        parts = []
        if memory.get("service_peak_mib") is not None:
            parts.append(f"service RSS {memory['service_peak_mib']} MiB; its Chromium RSS "
                         f"{memory['chromium_peak_mib']} MiB / PSS {memory.get('chromium_peak_pss_mib')} MiB "
                         f"({memory['chromium_peak_processes']} processes)")
        if memory.get("floor_chromium_peak_mib") is not None:
            parts.append(f"floor Chromium RSS {memory['floor_chromium_peak_mib']} MiB / PSS "
                         f"{memory.get('floor_chromium_peak_pss_mib')} MiB")
        if parts:
            out.append("peak memory: " + "; ".join(parts))
    return "\n".join(out)


def write_results(directory: Path, results: Mapping[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path
