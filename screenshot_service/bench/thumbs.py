"""The thumbnail phase: a 320 px thumbnail against the plain capture of the same page, in the same
run (pairs.py: at concurrency 1, request by request in turn).  The small page's viewport shot is
judged (targets.py); a full run also measures the lazy full page, whose thumbnail the renderer
draws at a quarter of the size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .pairs import measure_pairs, pair_record
from .plan import BenchPlan
from .progress import Progress
from .report import Stats
from .spec import PAGES
from .target import BenchTarget

THUMB_WIDTH = 320  # px: an <img> slot's size, against the plain capture's 1280
JUDGED_PAGE = "small"


def pages(plan: BenchPlan) -> tuple[str, ...]:
    """The pages measured: the judged one always (when the plan has it), the full page in a full run."""
    wanted = (JUDGED_PAGE,) if plan.mode == "quick" else (JUDGED_PAGE, "lazy")
    return tuple(page for page in wanted if page in plan.levels)


async def measure(plan: BenchPlan, target: BenchTarget, progress: Progress) -> list[dict[str, Any]]:
    specs = [PAGES[page] for page in pages(plan)]
    measured = await measure_pairs(plan, target, progress, specs,
                                   lambda plain: dataclasses.replace(plain, thumb_width=THUMB_WIDTH), "thumbnail")
    return [record(page, plain, thumb) for page, plain, thumb in measured]


def record(page: str, plain: Stats, thumb: Stats) -> dict[str, Any]:
    return pair_record(page, "thumb", plain, thumb, thumb_width=THUMB_WIDTH)

