"""The upstream-proxy phase: a capture chained through a loopback upstream proxy (SPEC §3.4) against
the same capture direct, in the same run (pairs.py: at concurrency 1, request by request in turn).

A spawned service gets a pool of one forward proxy in the harness's process (service.py,
forward_proxy.py) and a plan that may use it; the proxied side asks for it with ``proxy_pool``,
so the request is otherwise the same GET.  A service given by ``--url`` has no such pool: not measured.
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

JUDGED_PAGE = "small"


def pages(plan: BenchPlan) -> tuple[str, ...]:
    return (JUDGED_PAGE,) if JUDGED_PAGE in plan.levels else ()


async def measure(plan: BenchPlan, target: BenchTarget, progress: Progress) -> list[dict[str, Any]]:
    pool = target.service.upstream_pool
    if pool is None:
        return []
    specs = [PAGES[page] for page in pages(plan)]
    measured = await measure_pairs(plan, target, progress, specs,
                                   lambda plain: dataclasses.replace(plain, proxy_pool=pool), "proxied")
    return [record(page, plain, proxied) for page, plain, proxied in measured]


def record(page: str, plain: Stats, proxied: Stats) -> dict[str, Any]:
    return pair_record(page, "proxied", plain, proxied, upstream="loopback forward proxy (plain http, absolute form)")
