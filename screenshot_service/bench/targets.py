"""The targets (issue 13, point 6, and those of Steps 5 and 7 that still apply), judged from a
results document as written to results.json — so ``--check`` re-judges an old run the same way.

They are checked here, in the benchmark, and never as timed tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import diffs, extract, stages, thumbs, upstream
from .report import REJECT_MS_MAX, ratio

# Single-request latency is judged against the warm floor: a request to a pool with a ready
# context waits only for navigation and the screenshot, and so does the warm floor.
LATENCY_RATIO_MAX = 1.25  # small page, concurrency 1: service p50 / warm floor p50
PDF_RATIO_MAX = 1.25  # a long document as PDF, concurrency 1: service p50 / the warm floor's Page.printToPDF p50
# Throughput is judged against the cold floor at the same concurrency: at saturation every
# capture pays for a fresh context somewhere, on or off its critical path, on the same cores.
THROUGHPUT_RATIO_MIN = 1.0  # small page, highest concurrency: service / cold floor
OVERLOAD_P95_FACTOR_MAX = 2.0  # admitted p95 under overload / p95 at the same concurrency without it
RSS_GROWTH_PCT_MAX = 10.0
SOAK_CAPTURES_MIN = 1000  # the RSS target is over this many captures, with recycles among them
NAIVE_SPEEDUP_MIN = 5.0
BACKLOG_RATIO_MAX = 2.0  # Step 5: a job backlog may at most double sync latency
EXTRACT_RATIO_MAX = 1.3  # Step 18: extract=markdown's p50 / the plain capture's, same page, concurrency 1
THUMBNAIL_RATIO_MAX = 1.1  # Step 16: a 320 px thumbnail's p50 / the plain capture's, same page, concurrency 1
BATCH_RATIO_MIN = 0.9  # Step 19: a 50-item batch's throughput / the same captures as sync requests
PROXY_RATIO_MAX = 1.1  # Step 20: a capture through a loopback upstream proxy's p50 / the same capture direct
DIFF_COST_MAX = 0.25  # Step 19: compare_to's p50 / the plain capture's, minus one; viewport and 16384 px page
FAIR_WAIT_RATIO_MAX = 1.0  # the third key's longest wait for a slot / one attacker capture (p95)
DEFAULT_DEADLINE_S = 30.0  # the service's default [capture] deadline_seconds


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool | None  # None: not measured (or not enough of it) in this run
    detail: str

    def line(self) -> str:
        verdict = "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")
        return f"{verdict}  {self.name}: {self.detail}"


def _scenario(results: Mapping[str, Any], page: str, concurrency: int | None) -> Mapping[str, Any] | None:
    rows = [s for s in results.get("scenarios", []) if s.get("page") == page]
    if not rows:
        return None
    if concurrency is None:
        return max(rows, key=lambda s: s["concurrency"])
    return next((s for s in rows if s["concurrency"] == concurrency), None)


def evaluate(results: Mapping[str, Any]) -> list[Target]:
    """Every target, in a fixed order (the test relies on it)."""
    return [
        _latency(results),
        _throughput(results),
        *_overload(results),
        _backlog(results),
        _rss(results),
        _deadline(results),
        _naive(results),
        _thumbnail(results),
        _extract(results),
        _pdf(results),
        _fair_share(results),
        _batch(results),
        _upstream_proxy(results),
        _diff(results),
    ]


def _diff(results: Mapping[str, Any]) -> Target:
    measured = results.get("diff") or []
    rows = [r for r in measured if r.get("page") in diffs.JUDGED_PAGES]
    name = (f"a visual diff costs <= {DIFF_COST_MAX:g}x the capture's p50, viewport and 1280x16384 full page, "
            f"unchanged and changing (Step 19)")
    if not rows or any(r.get("diff_cost") is None and not r.get("errors") for r in rows):
        return Target(name, None, "not measured")
    passed = all(not r.get("errors") and r["diff_cost"] <= DIFF_COST_MAX for r in rows)
    shown = [*rows, *(r for r in measured if r not in rows)]
    return Target(name, passed, "; ".join(
        f"{r['page']}{'' if r in rows else ' (not judged)'}: p50 {r['diff_p50_ms']} ms vs plain "
        f"{r['plain_p50_ms']} ms = +{r['diff_cost']}x" + (f", errors {r['errors']}" if r.get("errors") else "")
        for r in shown))


def _pdf(results: Mapping[str, Any]) -> Target:
    return _against_warm_floor(
        results, "document", PDF_RATIO_MAX,
        f"long-document PDF: service p50 <= {PDF_RATIO_MAX}x a raw Page.printToPDF (warm floor, concurrency 1)")


def _latency(results: Mapping[str, Any]) -> Target:
    def cold(one: Mapping[str, Any]) -> str:
        also = f"; vs cold floor {one.get('latency_ratio')}x" if one.get("latency_ratio") is not None else ""
        if one.get("full_latency_ratio") is not None:
            also += f", vs full chromium's cold floor {one['full_latency_ratio']}x"
        return also

    return _against_warm_floor(
        results, "small", LATENCY_RATIO_MAX, f"small-page p50 at concurrency 1 <= {LATENCY_RATIO_MAX}x the warm floor",
        cold)


def _against_warm_floor(results: Mapping[str, Any], page: str, limit: float, name: str,
                        also: Callable[[Mapping[str, Any]], str] = lambda one: "") -> Target:
    """``page``'s p50 at concurrency 1 as a ratio to the warm floor's, with where its time went."""
    one = _scenario(results, page, 1)
    value = one.get("warm_latency_ratio") if one else None
    if one is None or value is None:
        return Target(name, None, "not measured")
    where = stages.describe(one.get(stages.FIELD))
    return Target(name, value <= limit,
                  f"service p50 {one['p50_ms']} ms / warm floor p50 {one['warm_floor_p50_ms']} ms = {value}x"
                  + also(one) + (f"; where the time goes (p50): {where}" if where else ""))


def _throughput(results: Mapping[str, Any]) -> Target:
    top = _scenario(results, "small", None)
    value = top.get("throughput_ratio") if top else None
    name = f"saturated throughput >= {THROUGHPUT_RATIO_MIN}x the cold floor"
    if top is None or value is None:
        return Target(name, None, "not measured")
    also = ""
    if top.get("full_throughput_ratio") is not None:
        also = f"; vs full chromium's cold floor {top['full_floor_throughput_per_s']}/s = {top['full_throughput_ratio']}x"
    return Target(name, value >= THROUGHPUT_RATIO_MIN,
                  f"small page at concurrency {top['concurrency']}: {top['throughput_per_s']}/s vs cold floor "
                  f"{top['floor_throughput_per_s']}/s = {value}x{also}")


def _overload(results: Mapping[str, Any]) -> list[Target]:
    overload = results.get("overload") or {}
    name = f"overload rejections < {REJECT_MS_MAX:g} ms each"
    if overload.get("rejected"):
        slow = overload.get("rejected_over_50ms", 0)
        rejections = Target(
            name, slow == 0 and not overload.get("other_errors"),
            f"{overload['rejected']} rejected {overload['rejected_by_status']}, max "
            f"{overload['reject_max_ms']} ms, {slow} at or over {REJECT_MS_MAX:g} ms"
            + (f", other errors {overload['other_errors']}" if overload.get("other_errors") else ""))
    else:
        rejections = Target(name, None if not overload else False,
                            "not measured" if not overload else "4x overload produced no 503/429 at all")
    # What the crowd costs the admitted: their p95 against the same concurrency without the crowd
    # (the saturated scenario).  Against concurrency 1 it would judge the cores instead: on a
    # machine with as many cores as slots, two admitted captures share them whatever the crowd does.
    value, reference, reference_ms = (overload.get("admitted_p95_vs_saturated"), "the saturated scenario's",
                                      overload.get("saturated_p95_ms"))
    if value is None:
        value, reference, reference_ms = (overload.get("admitted_p95_ratio"), "unloaded (concurrency 1)",
                                          overload.get("unloaded_p95_ms"))
    admitted = Target(
        f"overload: admitted p95 <= {OVERLOAD_P95_FACTOR_MAX:g}x the same load without the crowd",
        None if value is None else value <= OVERLOAD_P95_FACTOR_MAX,
        "not measured" if value is None else
        f"admitted p95 {overload['admitted_p95_ms']} ms / {reference} p95 {reference_ms} ms = {value}x "
        f"(vs unloaded p95 {overload.get('unloaded_p95_ms')} ms: {overload.get('admitted_p95_ratio')}x)")
    return [rejections, admitted]


def _backlog(results: Mapping[str, Any]) -> Target:
    backlog = results.get("jobs_backlog") or {}
    value = backlog.get("sync_latency_ratio")
    # ... and the backlog itself still finishes: deprioritised, not starved.
    succeeded = backlog.get("jobs_succeeded", backlog.get("jobs_queued"))
    drained = f"; {succeeded} of them succeeded in {backlog['jobs_drained_s']} s" if "jobs_drained_s" in backlog else ""
    return Target(
        f"sync latency with a job backlog <= {BACKLOG_RATIO_MAX:g}x unloaded, and the jobs finish (Step 5)",
        None if value is None else value <= BACKLOG_RATIO_MAX and succeeded == backlog.get("jobs_queued"),
        "not measured" if value is None else
        f"{backlog['jobs_queued']} jobs queued: sync p50 {backlog['sync_p50_ms']} ms / unloaded "
        f"{backlog['unloaded_p50_ms']} ms = {value}x{drained}")


def _rss(results: Mapping[str, Any]) -> Target:
    """Growth at or over the bound fails however short the soak; a pass needs the full soak
    and at least one recycle in it (a short or recycle-free soak proves too little: SKIP)."""
    soak = results.get("soak") or {}
    value = results.get("rss_growth_pct")
    name = f"RSS growth < {RSS_GROWTH_PCT_MAX:g}% over {SOAK_CAPTURES_MIN} captures with recycles"
    if value is None:
        return Target(name, None, "not measured")
    captures, recycles = soak.get("captures", 0), soak.get("recycles")
    detail = (f"{value}% over {captures} captures with {recycles} recycle(s) (the worse of service process "
              f"{soak.get('service_rss_growth_pct')}% and its Chromium {soak.get('chromium_rss_growth_pct')}%)")
    if value >= RSS_GROWTH_PCT_MAX:
        return Target(name, False, detail)
    if captures < SOAK_CAPTURES_MIN or not recycles:
        short = f"fewer than {SOAK_CAPTURES_MIN} captures" if captures < SOAK_CAPTURES_MIN else "no recycle"
        return Target(name, None, f"{detail} — {short}: not enough to judge")
    return Target(name, True, detail)


def slowest_answers(results: Mapping[str, Any]) -> dict[str, float]:
    """The slowest answer (any status) of each phase that timed the service."""
    slowest = {s["name"]: s["slowest_ms"] for s in results.get("scenarios", []) if s.get("slowest_ms") is not None}
    for phase in ("overload", "soak", "jobs_backlog"):
        value = (results.get(phase) or {}).get("slowest_ms")
        if value is not None:
            slowest[phase] = value
    for phase in ("thumbnail", "extract", "upstream_proxy", "diff"):
        for row in results.get(phase) or []:
            if row.get("slowest_ms") is not None:
                slowest[f"{phase} {row['page']}"] = row["slowest_ms"]
    return slowest


def _deadline(results: Mapping[str, Any]) -> Target:
    deadline_s = (results.get("config") or {}).get("deadline_s") or DEFAULT_DEADLINE_S
    name = f"no answer later than the deadline ({deadline_s:g} s)"
    slowest = slowest_answers(results)
    if not slowest:
        return Target(name, None, "not measured")
    where, worst = max(slowest.items(), key=lambda item: item[1])
    late = sorted(phase for phase, ms in slowest.items() if ms > deadline_s * 1000)
    return Target(name, not late, f"slowest answer {worst} ms ({where})"
                  + (f"; over the deadline in {', '.join(late)}" if late else ""))


def _naive(results: Mapping[str, Any]) -> Target:
    one = _scenario(results, "small", 1)
    value = None
    if one and one.get("naive_throughput_per_s"):
        value = ratio(one["throughput_per_s"], one["naive_throughput_per_s"])
    return Target(
        f"service >= {NAIVE_SPEEDUP_MIN:g}x naive throughput",
        None if value is None else value >= NAIVE_SPEEDUP_MIN,
        "not measured" if value is None or not one else
        f"small page at concurrency 1: {one['throughput_per_s']}/s vs naive "
        f"{one['naive_throughput_per_s']}/s = {value}x")


def _thumbnail(results: Mapping[str, Any]) -> Target:
    row = next((r for r in results.get("thumbnail") or [] if r.get("page") == thumbs.JUDGED_PAGE), None)
    value = row.get("latency_ratio") if row else None
    name = f"a {thumbs.THUMB_WIDTH} px thumbnail's p50 <= {THUMBNAIL_RATIO_MAX:g}x the plain capture of the same page (Step 16)"
    if row is None or value is None:
        return Target(name, None, "not measured")
    return Target(name, value <= THUMBNAIL_RATIO_MAX and not row.get("errors"),
                  f"{row['page']} page at concurrency 1: {row['thumb_width']} px p50 {row['thumb_p50_ms']} ms / plain "
                  f"{row['plain_p50_ms']} ms = {value}x" + (f", errors {row['errors']}" if row.get("errors") else ""))
def _upstream_proxy(results: Mapping[str, Any]) -> Target:
    row = next((r for r in results.get("upstream_proxy") or [] if r.get("page") == upstream.JUDGED_PAGE), None)
    value = row.get("latency_ratio") if row else None
    name = f"a capture through a loopback upstream proxy: p50 <= {PROXY_RATIO_MAX:g}x the same capture direct (Step 20)"
    if row is None or value is None:
        return Target(name, None, "not measured")
    return Target(name, value <= PROXY_RATIO_MAX and not row.get("errors"),
                  f"{row['page']} page at concurrency 1: proxied p50 {row['proxied_p50_ms']} ms / direct "
                  f"{row['plain_p50_ms']} ms = {value}x" + (f", errors {row['errors']}" if row.get("errors") else ""))


def _extract(results: Mapping[str, Any]) -> Target:
    rows = [r for r in results.get("extract") or [] if r.get("page") in extract.JUDGED_PAGES]
    name = (f"extract={extract.KIND}'s p50 <= {EXTRACT_RATIO_MAX:g}x the plain capture of the same page, "
            f"small page and long document (Step 18)")
    if not rows or any(r.get("latency_ratio") is None and not r.get("errors") for r in rows):
        return Target(name, None, "not measured")
    passed = all(not r.get("errors") and r["latency_ratio"] <= EXTRACT_RATIO_MAX for r in rows)
    return Target(name, passed, "; ".join(
        f"{r['page']} at concurrency 1: p50 {r['extract_p50_ms']} ms / plain {r['plain_p50_ms']} ms = "
        f"{r['latency_ratio']}x" + (f", errors {r['errors']}" if r.get("errors") else "") for r in rows))


def _fair_share(results: Mapping[str, Any]) -> Target:
    fair = results.get("fair_share") or {}
    ratio_ = fair.get("third_key_wait_ratio")
    name = (f"fair share: under two attacker keys a third key is never refused and waits <= "
            f"{FAIR_WAIT_RATIO_MAX:g} attacker capture (Step 15)")
    if ratio_ is None or not fair.get("queue_was_full"):
        return Target(name, None, "not measured" if not fair else "the attackers never filled the queue")
    return Target(
        name, fair["third_key_refused"] == 0 and ratio_ <= FAIR_WAIT_RATIO_MAX,
        f"{fair['third_key_refused']} of {fair['third_key_requests']} refused; longest wait "
        f"{fair['third_key_longest_wait_ms']} ms / attacker capture p95 {fair['attacker_capture_p95_ms']} ms "
        f"= {ratio_}x")


def _batch(results: Mapping[str, Any]) -> Target:
    batch = results.get("batch") or {}
    name = (f"batch: {batch.get('items', 50)} items as one batch >= {BATCH_RATIO_MIN:g}x the throughput of the "
            f"same captures as sync requests at the pool's concurrency (Step 19)")
    if batch.get("throughput_ratio") is None:
        return Target(name, None, "not measured")
    failed = batch.get("sync_errors") or batch.get("batch_failed")
    return Target(
        name, not failed and batch["throughput_ratio"] >= BATCH_RATIO_MIN,
        f"batch {batch['batch_per_s']}/s ({batch['batch_seconds']} s, {batch['jobs_workers']} job workers) / sync "
        f"{batch['sync_per_s']}/s ({batch['sync_seconds']} s, concurrency {batch['concurrency']}) = "
        f"{batch['throughput_ratio']}x" + (f"; failures: sync {batch['sync_errors']}, batch {batch['batch_failed']}"
                                           if failed else ""))
