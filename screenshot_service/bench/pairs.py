"""A capture against a variant of it (a thumbnail, extracted content), on the same page in the same run.

At concurrency 1 the two take turns request by request (load.run_alternating, each
request on a quiet machine), so a drift in the machine's load hits both alike.  The
thumbnail and content phases (thumbs.py, extract.py) are both this one measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import procstats
from .load import run_alternating
from .plan import BenchPlan
from .progress import Progress
from .report import Stats, ratio
from .spec import CaptureSpec
from .target import BenchTarget


async def measure_pairs(plan: BenchPlan, target: BenchTarget, progress: Progress, specs: list[CaptureSpec],
                        variant: Callable[[CaptureSpec], CaptureSpec], label: str) -> list[tuple[str, Stats, Stats]]:
    """(page, plain stats, variant stats) for each of ``specs``."""
    measured = []
    for plain in specs:
        progress.step(f"{label} {plain.page} c=1: plain + {label} (alternating)", 2 * plan.max_requests)
        calls = [target.service_call(plain, plan.response_type),
                 target.service_call(variant(plain), plan.response_type)]
        plain_run, variant_run = await run_alternating(calls, plan.max_requests, 2 * plan.max_seconds, progress.tick,
                                                       settle=procstats.machine_quiet)
        progress.done()
        measured.append((plain.page, Stats.of(plain_run), Stats.of(variant_run)))
    return measured


def pair_record(page: str, label: str, plain: Stats, variant: Stats, **about: Any) -> dict[str, Any]:
    """One page's results: ``about`` (what the variant is), then each side's latency and errors
    (the variant's under ``label``), and the variant's p50 as a ratio to the plain capture's."""
    return {
        "page": page,
        **about,
        "requests": plain.requests + variant.requests,
        "plain_p50_ms": plain.p50_ms,
        "plain_p95_ms": plain.p95_ms,
        f"{label}_p50_ms": variant.p50_ms,
        f"{label}_p95_ms": variant.p95_ms,
        "slowest_ms": max((s for s in (plain.slowest_ms, variant.slowest_ms) if s is not None), default=None),
        "errors": {**{f"plain {k}": v for k, v in plain.errors.items()},
                   **{f"{label} {k}": v for k, v in variant.errors.items()}},
        "latency_ratio": ratio(variant.p50_ms, plain.p50_ms),
    }
