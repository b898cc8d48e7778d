"""The content phase: ``extract=markdown`` against the plain capture of the same page, in the same run
(pairs.py: at concurrency 1, request by request in turn).  The small fixture page and the long
document (/document, 40 sections of headings, paragraphs and tables, captured as an image here)
are judged (targets.py); a full run adds the heavy and lazy pages.
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

KIND = "markdown"
JUDGED_PAGES = ("small", "document")


def pages(plan: BenchPlan) -> tuple[str, ...]:
    wanted = JUDGED_PAGES if plan.mode == "quick" else ("small", "heavy", "lazy", "document")
    return tuple(page for page in wanted if page in plan.levels)


def plain_capture(page: str) -> CaptureSpec:
    """The page's image capture (the long document is printed to PDF elsewhere: here, a PNG)."""
    return dataclasses.replace(PAGES[page], format="png")


async def measure(plan: BenchPlan, target: BenchTarget, progress: Progress) -> list[dict[str, Any]]:
    specs = [plain_capture(page) for page in pages(plan)]
    measured = await measure_pairs(plan, target, progress, specs,
                                   lambda plain: dataclasses.replace(plain, extract=KIND), f"extract={KIND}")
    return [record(page, plain, extracted) for page, plain, extracted in measured]


def record(page: str, plain: Stats, extracted: Stats) -> dict[str, Any]:
    return pair_record(page, "extract", plain, extracted, extract=KIND)
