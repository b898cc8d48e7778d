"""The thumbnail phase: a 320 px thumbnail against the plain capture of the same page, in the same run.

At concurrency 1, the two take turns request by request (load.run_alternating,
each request on a quiet machine), so a drift in the machine's load hits both
alike.  The small page's viewport shot is judged (targets.py); a full run also
measures the lazy full page, whose thumbnail the renderer draws at a quarter
of the size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import procstats
from .load import run_alternating
from .plan import BenchPlan
from .progress import Progress
from .report import Stats, ratio
from .spec import PAGES
from .target import BenchTarget

THUMB_WIDTH = 320  # px: an <img> slot's size, against the plain capture's 1280
JUDGED_PAGE = "small"


def pages(plan: BenchPlan) -> tuple[str, ...]:
    """The pages measured: the judged one always (when the plan has it), the full page in a full run."""
    wanted = (JUDGED_PAGE,) if plan.mode == "quick" else (JUDGED_PAGE, "lazy")
    return tuple(page for page in wanted if page in plan.levels)


async def measure(plan: BenchPlan, target: BenchTarget, progress: Progress) -> list[dict[str, Any]]:
    records = []
    for page in pages(plan):
        plain = PAGES[page]
        thumb = dataclasses.replace(plain, thumb_width=THUMB_WIDTH)
        progress.step(f"thumbnail {page} c=1: plain + {THUMB_WIDTH} px (alternating)", 2 * plan.max_requests)
        calls = [target.service_call(plain, plan.response_type), target.service_call(thumb, plan.response_type)]
        plain_run, thumb_run = await run_alternating(calls, plan.max_requests, 2 * plan.max_seconds, progress.tick,
                                                     settle=procstats.machine_quiet)
        progress.done()
        records.append(record(page, Stats.of(plain_run), Stats.of(thumb_run)))
    return records


def record(page: str, plain: Stats, thumb: Stats) -> dict[str, Any]:
    return {
        "page": page,
        "thumb_width": THUMB_WIDTH,
        "requests": plain.requests + thumb.requests,
        "plain_p50_ms": plain.p50_ms,
        "plain_p95_ms": plain.p95_ms,
        "thumb_p50_ms": thumb.p50_ms,
        "thumb_p95_ms": thumb.p95_ms,
        "slowest_ms": max((s for s in (plain.slowest_ms, thumb.slowest_ms) if s is not None), default=None),
        "errors": {**{f"plain {k}": v for k, v in plain.errors.items()},
                   **{f"thumb {k}": v for k, v in thumb.errors.items()}},
        "latency_ratio": ratio(thumb.p50_ms, plain.p50_ms),
    }

