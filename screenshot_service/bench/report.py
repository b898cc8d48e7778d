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

from . import stages as server_timing

# Fields every scenario record carries (the contract of results.json).  "floor_" is the cold
# floor on the fastest binary, "warm_floor_" the warm one on it, "full_floor_" cold on full
# Chromium (see floor.py); a floor not measured in a scenario has None and 0 there.
FLOOR_PREFIXES = ("floor", "warm_floor", "full_floor")
SCENARIO_FIELDS = (
    "name", "page", "concurrency", "requests", "ok", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms",
    "slowest_ms", "throughput_per_s", "errors",
    *(f"{prefix}_{name}" for prefix in FLOOR_PREFIXES
      for name in ("requests", "ok", "p50_ms", "p95_ms", "throughput_per_s", "errors")),
    "latency_ratio", "throughput_ratio", "warm_latency_ratio", "full_latency_ratio", "full_throughput_ratio",
    "naive_p50_ms", "naive_throughput_per_s", server_timing.FIELD,
)
REJECT_MS_MAX = 50.0  # every overload rejection (a target: targets.py)


@dataclass(frozen=True)
class Sample:
    """One request: its outcome ("200", "503", an exception name, "ok") and how long it took."""

    status: str
    latency_s: float
    ok: bool
    stages: Mapping[str, float] = field(default_factory=dict)  # the answer's Server-Timing, in ms


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
    slowest_ms: float | None  # of every answer, errors included: what the deadline bounds
    throughput_per_s: float
    errors: dict[str, int]
    stages_p50_ms: dict[str, float] = field(default_factory=dict)  # stages.p50s of the successes

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
            slowest_ms=_ms(max(s.latency_s for s in run.samples)) if run.samples else None,
            throughput_per_s=round(len(good) / run.wall_s, 3) if run.wall_s > 0 else 0.0,
            errors=dict(sorted(errors.items())),
            stages_p50_ms=server_timing.p50s((s.latency_s, s.stages) for s in run.samples if s.ok),
        )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def scenario_record(page: str, concurrency: int, service: Stats, floor: Stats | None = None,
                    naive: Stats | None = None, *, warm: Stats | None = None,
                    full: Stats | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": f"{page}-c{concurrency}",
        "page": page,
        "concurrency": concurrency,
        "requests": service.requests,
        "ok": service.ok,
        "p50_ms": service.p50_ms,
        "p95_ms": service.p95_ms,
        "p99_ms": service.p99_ms,
        "mean_ms": service.mean_ms,
        "max_ms": service.max_ms,
        "slowest_ms": service.slowest_ms,
        "throughput_per_s": service.throughput_per_s,
        "errors": service.errors,
        server_timing.FIELD: service.stages_p50_ms,
    }
    for prefix, stats in zip(FLOOR_PREFIXES, (floor, warm, full), strict=True):
        record.update({
            f"{prefix}_requests": stats.requests if stats else 0,
            f"{prefix}_ok": stats.ok if stats else 0,
            f"{prefix}_p50_ms": stats.p50_ms if stats else None,
            f"{prefix}_p95_ms": stats.p95_ms if stats else None,
            f"{prefix}_throughput_per_s": stats.throughput_per_s if stats else None,
            f"{prefix}_errors": stats.errors if stats else {},
        })
    record.update({
        "latency_ratio": ratio(service.p50_ms, floor.p50_ms if floor else None),
        "throughput_ratio": ratio(service.throughput_per_s, floor.throughput_per_s if floor else None),
        "warm_latency_ratio": ratio(service.p50_ms, warm.p50_ms if warm else None),
        "full_latency_ratio": ratio(service.p50_ms, full.p50_ms if full else None),
        "full_throughput_ratio": ratio(service.throughput_per_s, full.throughput_per_s if full else None),
        "naive_p50_ms": naive.p50_ms if naive else None,
        "naive_throughput_per_s": naive.throughput_per_s if naive else None,
    })
    return record


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
        "slowest_ms": _ms(max(s.latency_s for s in run.samples)) if run.samples else None,
        "unloaded_p95_ms": unloaded_p95_ms,
        "saturated_p95_ms": saturated_p95_ms,
        "admitted_p95_ratio": ratio(admitted.p95_ms, unloaded_p95_ms),
        "admitted_p95_vs_saturated": ratio(admitted.p95_ms, saturated_p95_ms),
    }


def growth_pct(first: float, last: float) -> float | None:
    return round((last - first) / first * 100.0, 2) if first > 0 else None


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
        ("p95 ms", "p95_ms"), ("max ms", "slowest_ms"), ("req/s", "throughput_per_s"), ("errors", "errors"),
        ("warm p50", "warm_floor_p50_ms"), ("cold p50", "floor_p50_ms"), ("cold req/s", "floor_throughput_per_s"),
        ("full p50", "full_floor_p50_ms"), ("full req/s", "full_floor_throughput_per_s"),
        ("lat x warm", "warm_latency_ratio"), ("lat x cold", "latency_ratio"), ("thr x cold", "throughput_ratio"),
        ("thr x full", "full_throughput_ratio"), ("naive p50", "naive_p50_ms"),
        ("cpu ms svc+chr", "service_total_cpu_ms"), ("cpu ms cold", "floor_cpu_ms_per_capture"),
    ]
    rows = [[title for title, _ in columns]]
    rows += [[_cell(_with_total_cpu(s).get(key)) for _, key in columns] for s in scenarios]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def binaries_line(results: Mapping[str, Any]) -> str | None:
    """Which Chromium each side ran: "service: /usr/lib/... (Chromium 1.2.3)" and so on."""
    binaries = results.get("binaries") or {}
    parts = [f"{role}: {b.get('path')} ({b.get('version')})" for role, b in binaries.items() if b]
    return "binaries: " + "; ".join(parts) if parts else None


def summary(results: Mapping[str, Any]) -> str:
    """The binaries, the table, then the overload, soak and memory lines, as printed on stdout."""
    header = binaries_line(results)
    out = ([header, ""] if header else []) + [table(results.get("scenarios", []))]
    where = server_timing.breakdown(results.get("scenarios", []))
    if where:
        out.append("\n" + where)
    for row in results.get("thumbnail") or []:
        out.append(f"thumbnail {row['page']} c=1: {row['thumb_width']} px p50 {row['thumb_p50_ms']} ms vs the plain "
                   f"capture {row['plain_p50_ms']} ms = {row['latency_ratio']}x" + _errors(row["errors"]))
    for row in results.get("extract") or []:
        out.append(f"extract={row['extract']} {row['page']} c=1: p50 {row['extract_p50_ms']} ms vs the plain "
                   f"capture {row['plain_p50_ms']} ms = {row['latency_ratio']}x" + _errors(row["errors"]))
    out += [f"upstream proxy {r['page']} c=1: p50 {r['proxied_p50_ms']} ms vs the same capture direct "
            f"{r['plain_p50_ms']} ms = {r['latency_ratio']}x" + _errors(r["errors"]) for r in results.get("upstream_proxy") or []]
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
            f"{soak.get('throughput_per_s')}/s, {soak.get('recycles')} recycle(s), "
            f"{soak.get('restarts')} restart(s); "
            f"RSS service {soak.get('service_rss_first_mib')} -> {soak.get('service_rss_last_mib')} MiB, "
            f"Chromium {soak.get('chromium_rss_first_mib')} -> {soak.get('chromium_rss_last_mib')} MiB "
            f"(PSS {soak.get('chromium_pss_first_mib')} -> {soak.get('chromium_pss_last_mib')} MiB); "
            f"growth {results.get('rss_growth_pct')}% (the worse of the two)"
        )
    fair = results.get("fair_share")
    if fair:
        out.append(
            f"fair share: {fair['attackers']} attacker keys x {fair['per_attacker']} captures against "
            f"{fair['pool_size']} slots + {fair['max_queue']} queue: the third key's {fair['third_key_requests']} "
            f"requests {fair['third_key_refused']} refused, longest wait {fair['third_key_longest_wait_ms']} ms = "
            f"{fair['third_key_wait_ratio']}x one attacker capture (p95 {fair['attacker_capture_p95_ms']} ms, "
            f"p50 {fair['attacker_capture_p50_ms']} ms)"
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


def _errors(errors: Mapping[str, int]) -> str:
    return f", errors {dict(errors)}" if errors else ""


def write_results(directory: Path, results: Mapping[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path
