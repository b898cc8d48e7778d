"""What a benchmark run does: which pages at which concurrency, how long, how big a soak."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import PAGES

QUICK_BUDGET_S = 140.0  # --quick: start-up to end of soak; teardown and the plot fit in the rest of 3 min


@dataclass(frozen=True)
class BenchPlan:
    mode: str
    levels: dict[str, tuple[int, ...]]  # page -> concurrency levels, in run order
    max_requests: int  # per run (floor or service) of a scenario
    max_seconds: float
    warmup: int  # unrecorded requests per page and side before its first scenario
    soak_captures: int
    soak_seconds: float | None  # quick mode bounds the soak by time and records the count
    soak_segment: int  # captures between RSS checkpoints
    overload_waves: int
    naive_pages: tuple[str, ...]
    naive_samples: int
    full_floor_pages: tuple[str, ...] = ()  # pages measured on full Chromium's floor too, if installed
    response_type: str = "json"
    budget_s: float | None = None  # quick: the whole run (start-up included) must end within this
    fair_share: bool = False  # the starvation attack on a service of its own (fairness.py)

    @property
    def scenario_count(self) -> int:
        return sum(len(levels) for levels in self.levels.values())


def make_plan(*, quick: bool, pool_size: int, capacity: int | None = None, pages: list[str] | None = None,
              concurrency: list[int] | None = None, requests: int | None = None,
              seconds: float | None = None, soak: int | None = None, naive_samples: int | None = None,
              response_type: str = "json") -> BenchPlan:
    p = pool_size
    if quick:
        default = {"small": (1, 2, p), "heavy": (p,), "lazy": (1,), "slow": (p,), "document": (1,)}
    else:
        default = {name: (1, 2, p, 2 * p) for name in PAGES}
    chosen = pages or list(default)
    if capacity is not None:  # beyond slots + queue is overload, measured by its own phase
        default = {page: tuple(c for c in wanted if c <= capacity) or (1,) for page, wanted in default.items()}
    levels = {
        page: tuple(sorted(set(concurrency))) if concurrency else tuple(sorted(set(default[page])))
        for page in chosen
    }
    return BenchPlan(
        mode="quick" if quick else "full",
        levels=levels,
        max_requests=requests or (40 if quick else 60),
        max_seconds=seconds or (4.0 if quick else 30.0),
        warmup=1 if quick else 2,
        # The RSS target is over 1000 captures with recycles (targets.py); quick stops at its time budget.
        soak_captures=soak if soak is not None else (500 if quick else 1000),
        soak_seconds=60.0 if quick else None,  # quick: shortened further to fit the budget
        soak_segment=25 if quick else 50,
        overload_waves=1 if quick else 5,
        naive_pages=("small",) if quick else tuple(c for c in chosen if PAGES[c].format == "png"),
        naive_samples=naive_samples if naive_samples is not None else (3 if quick else 5),
        full_floor_pages=("small",) if quick else tuple(chosen),
        response_type=response_type,
        budget_s=QUICK_BUDGET_S if quick else None,
        fair_share=not quick,
    )
