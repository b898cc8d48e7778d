"""`screenshot-service bench`: the benchmark harness (Step 7, issue 13 point 6).

Starts a local fixture site and the service with a benchmark config (or
targets ``--url`` of a running one), measures the same captures through bare
DevTools loops (the floors: cold and warm on the fastest binary, cold on full
Chromium; floor.py) and a launch-per-request loop (naive), and reports latency
percentiles, throughput, errors, overload behaviour and memory — as a table on
stdout, ``DIR/results.json`` and ``DIR/plot.png`` with ``--out DIR``, and
PASS/FAIL lines for the targets (targets.py).

``python -m screenshot_service.bench`` runs the same thing.

The started service gets one browser slot per core and no queue: captures are
CPU-bound, so more slots than cores only share the same CPU more slowly, and a
queue makes every admitted request of a burst wait (``--pool-size`` and
``--max-queue`` measure other choices).  It recycles its Chromium as shipped
(``browser.recycle_after``'s default, 200 captures), so the soak (1000 captures
in a full run) sees about five recycles and the scenarios pay for them no more
often than a default install does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import BrowserConfig, Settings

DEFAULT_POOL = max(1, min(os.cpu_count() or 2, 64))
RECYCLE_AFTER = BrowserConfig().recycle_after


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are integers >= 1")
    return values


def _pages(text: str) -> list[str]:
    from .spec import PAGES

    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in PAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"pages are a comma-separated subset of {', '.join(PAGES)}")
    return names


def configure_parser(bench: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bench options, on a parser of its own or on the CLI's `bench` subparser."""
    bench.add_argument("--quick", action="store_true",
                       help="fewer scenarios, time-bounded runs and soak: under 3 minutes on 2 cores")
    bench.add_argument("--out", type=Path, metavar="DIR", help="write DIR/results.json and DIR/plot.png")
    bench.add_argument("--url", help="benchmark a running service at this base URL instead of starting one")
    bench.add_argument("--api-key", default=os.environ.get("SCREENSHOT_BENCH_API_KEY"),
                       help="API key for --url (default: $SCREENSHOT_BENCH_API_KEY)")
    bench.add_argument("--pid", type=int, help="with --url: the service's pid, to measure its memory")
    bench.add_argument("--pool-size", type=int, default=DEFAULT_POOL,
                       help=f"browser.pool_size of the started service (default: the CPU count, {DEFAULT_POOL})")
    bench.add_argument("--max-queue", type=int,
                       help="browser.max_queue of the started service (default 0: refuse rather than queue); "
                            "with --url, the running service's value for the overload scenario (default 16)")
    bench.add_argument("--browsers", type=int, default=1, help="browser.browsers of the started service (1)")
    bench.add_argument("--recycle-after", type=int, default=RECYCLE_AFTER,
                       help=f"browser.recycle_after of the started service ({RECYCLE_AFTER}, the "
                            "service's default: recycles happen during the soak)")
    bench.add_argument("--pages", type=_pages, help="comma-separated: small,heavy,lazy,slow,document (default: all)")
    bench.add_argument("--concurrency", type=_int_list, metavar="LIST",
                       help="concurrency levels for every page, e.g. 1,2,4,8")
    bench.add_argument("--requests", type=int, metavar="N", help="at most N requests per run (quick 40, full 60)")
    bench.add_argument("--seconds", type=float, metavar="S", help="at most S seconds per run (quick 4, full 30)")
    bench.add_argument("--soak", type=int, metavar="N",
                       help="captures in the memory soak (full 1000; quick 500, stopping when its time budget "
                            "is spent); 0 skips it")
    bench.add_argument("--naive", type=int, metavar="N", help="naive-baseline samples per page (quick 3, full 5)")
    bench.add_argument("--response-type", choices=("json", "image", "base64"), default="json")
    bench.add_argument("--no-floor", action="store_true", help="skip the raw-CDP floors (no ratios)")
    bench.add_argument("--keep", action="store_true", help="keep the temporary directory (service log, config)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    bench.add_argument("--check", type=Path, metavar="RESULTS_JSON",
                       help="only print the target verdicts of an earlier results.json")
    return bench


def add_bench_parser(
    sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser] | None = None
) -> None:
    """Add `bench` to the CLI's subparsers (``cli._parser`` calls this).

    ``--config`` (via ``with_config``) only supplies ``browser.executable``, for the started
    service and the naive loop (e.g. full chromium, to measure the service on it); the rest of
    the service's config is the benchmark's own.  The floors always run on the binary that
    auto-detection picks (the fastest installed) and on full Chromium.
    """
    bench = sub.add_parser("bench", help="benchmark the service against the raw-CDP floor and a naive baseline")
    configure_parser(bench)
    if with_config is not None:
        with_config(bench)
    bench.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The `bench` command: run (or --check), print, write, judge."""
    from . import report, targets

    if args.check:
        results = json.loads(args.check.read_text(encoding="utf-8"))
        return _verdict(targets.evaluate(results), args.strict)

    from .plan import make_plan
    from .runner import RunOptions, run_bench
    from .service import ServiceOptions

    max_queue = args.max_queue if args.max_queue is not None else (None if args.url else 0)
    pool_size = args.pool_size
    capacity = None if max_queue is None else pool_size + max_queue
    plan = make_plan(quick=args.quick, pool_size=pool_size, capacity=capacity, pages=args.pages,
                     concurrency=args.concurrency,
                     requests=args.requests, seconds=args.seconds, soak=args.soak, naive_samples=args.naive,
                     response_type=args.response_type)
    opts = RunOptions(
        plan=plan,
        service=ServiceOptions(pool_size=pool_size, max_queue=max_queue if max_queue is not None else 16,
                               browsers=args.browsers, recycle_after=args.recycle_after,
                               executable=settings.browser.executable),
        out=args.out, url=args.url, api_key=args.api_key, pid=args.pid,
        executable=settings.browser.executable, floor=not args.no_floor, keep=args.keep,
        progress=not args.no_progress,
    )
    try:
        results = asyncio.run(run_bench(opts))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(report.summary(results))
    if args.out:
        path = report.write_results(args.out, results)
        print(f"\nwrote {path}")
        from . import plot

        if plot.available():
            print(f"wrote {plot.write_plot(results, args.out / 'plot.png')}")
        else:
            print("no plot: matplotlib is not installed (pip install -e '.[bench]')")
    print()
    return _verdict(targets.evaluate(results), args.strict)


def _verdict(targets: list[Any], strict: bool) -> int:
    for target in targets:
        print(target.line())
    failed = any(t.passed is False for t in targets)
    return 1 if strict and failed else 0
