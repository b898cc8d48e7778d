"""Where the service's time goes, from the Server-Timing header of its answers.

Each successful answer reports its stages (capture/timing.py); a scenario keeps the p50
of each, and of two remainders worked out per answer: ``other`` (in the handler but in no
stage: reading the body, parsing options, rendering the answer) and ``outside`` (what the
client waited beyond the handler's total: HTTP on both ends, loopback, the event loops).
p50s do not add up: each is the middle of its own column.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from ..capture.timing import STAGES, TOTAL

OTHER = "other"
OUTSIDE = "outside"
COLUMNS = (*STAGES, OTHER, TOTAL, OUTSIDE)  # the order they are reported in
FIELD = "server_timing_p50_ms"  # of a scenario record in results.json


def p50s(answers: Iterable[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Milliseconds by column, from (client latency in seconds, Server-Timing in ms) of each
    successful answer; a stage only over the answers that ran it.  Empty if none had a total."""
    columns: dict[str, list[float]] = {}
    for latency_s, metrics in answers:
        total = metrics.get(TOTAL)
        if total is None:
            continue
        staged = {name: ms for name, ms in metrics.items() if name in STAGES}
        for name, ms in staged.items():
            columns.setdefault(name, []).append(ms)
        columns.setdefault(OTHER, []).append(max(0.0, total - sum(staged.values())))
        columns.setdefault(TOTAL, []).append(total)
        columns.setdefault(OUTSIDE, []).append(max(0.0, latency_s * 1000 - total))
    # statistics.median interpolates between the two middle values, as report.percentile(50) does
    return {name: round(statistics.median(columns[name]), 2) for name in COLUMNS if name in columns}


def describe(stages: Mapping[str, float] | None) -> str | None:
    """``auth 0.4 · admission 1.1 · ... | total 58.0 · outside 3.1 ms``, or None when not measured."""
    if not stages:
        return None
    inside = " · ".join(f"{name} {stages[name]:g}" for name in (*STAGES, OTHER) if name in stages)
    around = " · ".join(f"{name} {stages[name]:g}" for name in (TOTAL, OUTSIDE) if name in stages)
    return f"{inside} | {around} ms"


def breakdown(scenarios: Iterable[Mapping[str, Any]]) -> str | None:
    """One line per scenario whose answers carried Server-Timing (the stdout summary)."""
    lines = [f"  {s['name']}: {text}" for s in scenarios if (text := describe(s.get(FIELD)))]
    if not lines:
        return None
    return "\n".join(["where the service's time goes (p50 per stage, from Server-Timing):", *lines])
