"""The visual-diff phase: ``compare_to=previous`` against the plain capture of the same page, in
the same run (pairs.py: at concurrency 1, request by request in turn, so each comparison's
baseline is the plain capture just before it).  Judged (targets.py) on the small page's viewport
and on /long, a 1280 x 16384 full page, each unchanged (a monitor's usual run: the same bytes,
nothing decoded) and changing at every request (both images decoded, compared and a marked image
made): the diff's cost is the compared capture's p50 over the plain one's, minus one.  An answer
without a diff counts as an error (bench/service.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .pairs import measure_pairs, pair_record
from .plan import BenchPlan
from .progress import Progress
from .report import Stats
from .spec import PAGES, CaptureSpec
from .target import BenchTarget

LONG = CaptureSpec("long", "/long", full_page=True)  # fixture_site.LONG_HEIGHT tall
# The same pages with a part repainted per request: every comparison finds a change and pays
# for decoding both images (an unchanged capture has the baseline's very bytes: no decode).
CHANGING = (CaptureSpec("small-changing", "/small?changing=1"),
            CaptureSpec("long-changing", "/long?changing=1", full_page=True))
SPECS = {spec.page: spec for spec in (PAGES["small"], LONG, *CHANGING)}
JUDGED_PAGES = tuple(SPECS)
# A 16384 px capture takes seconds: fewer of them, with time enough for each.
LONG_REQUESTS = 8
LONG_SECONDS = 20.0


def pages(plan: BenchPlan) -> tuple[str, ...]:
    """The judged pages when the plan measures the small page (the default plans do)."""
    return JUDGED_PAGES if "small" in plan.levels else ()


async def measure(plan: BenchPlan, target: BenchTarget, progress: Progress) -> list[dict[str, Any]]:
    rows = []
    for page in pages(plan):
        spec, page_plan = SPECS[page], plan
        if spec.full_page:
            page_plan = dataclasses.replace(plan, max_requests=min(plan.max_requests, LONG_REQUESTS),
                                            max_seconds=max(plan.max_seconds, LONG_SECONDS))
        measured = await measure_pairs(page_plan, target, progress, [spec],
                                       lambda plain: dataclasses.replace(plain, compare_to="previous"), "diff")
        rows += [record(name, plain, compared) for name, plain, compared in measured]
    return rows


def record(page: str, plain: Stats, compared: Stats) -> dict[str, Any]:
    row = pair_record(page, "diff", plain, compared)
    ratio = row["latency_ratio"]
    row["diff_cost"] = None if ratio is None else round(ratio - 1, 3)
    return row
