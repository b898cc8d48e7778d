"""The benchmark harness works: floor loop, load runner, report, targets, plot, config.

Functional only — no timing assertions (timing targets are judged from
results.json by `screenshot-service bench`, never here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from PIL import Image

from screenshot_service import config, config_loading
from screenshot_service.bench import (
    add_bench_parser,
    binaries,
    diffs,
    extract,
    fixture_site,
    naive,
    plot,
    procstats,
    report,
    run,
    stages,
    targets,
    thumbs,
)
from screenshot_service.bench.floor import floor_browser
from screenshot_service.bench.load import (
    Answer,
    run_alternating,
    run_burst,
    run_chunks,
    run_load,
    timed,
)
from screenshot_service.bench.plan import make_plan
from screenshot_service.bench.report import Run, Sample, Stats
from screenshot_service.bench.service import BENCH_PLAN, ServiceHandle, ServiceOptions, bench_config
from screenshot_service.bench.spec import PAGES, CaptureSpec
from screenshot_service.bench.target import BenchTarget, Cpu
from screenshot_service.browser.executable import find_executable, find_full_chromium, is_headless_shell
from screenshot_service.capture.pdf import page_count
from screenshot_service.capture.timing import StageTimings, parse_server_timing
from tests.conftest import Service, wait_for


def _leftovers(user_data_dir: str) -> list[str]:
    """Pids of any process still running on this profile, and the profile if it still exists."""
    found = subprocess.run(["pgrep", "-f", f"--user-data-dir={user_data_dir}"], capture_output=True, text=True)
    return found.stdout.split() + ([user_data_dir] if os.path.exists(user_data_dir) else [])


async def test_floor_captures_decode_and_show_the_js_painted_pixel() -> None:
    async with fixture_site.serve() as site:
        async with floor_browser() as browser:
            pid, profile = browser.pid, browser._user_data_dir
            shots = await asyncio.gather(*(browser.capture(site.url("/small"), PAGES["small"]) for _ in range(2)))
            tab = await browser.open_tab(PAGES["small"], ready=True)  # the warm floor's way
            try:
                shots.append(await browser.shoot(tab, site.url("/small"), PAGES["small"]))
            finally:
                await browser.close_tab(tab)
            document = await browser.capture(site.url("/document"), PAGES["document"])  # the PDF floor
            changing = [await browser.capture(site.url("/small?changing=1"), PAGES["small"]) for _ in range(2)]
        assert PAGES["document"].produced(document) and page_count(document) > 10
        bars = [Image.open(io.BytesIO(data)).convert("RGB").getpixel((550, 150)) for data in changing]
        assert bars[0] != bars[1] and (255, 255, 255) not in bars  # the diff phase's changing viewport
        assert len(shots) == 3
        for data in shots:
            image = Image.open(io.BytesIO(data))
            assert image.format == "PNG" and image.size == (1280, 800)
            rgb = image.convert("RGB")
            assert rgb.getpixel(fixture_site.PAINT_PIXEL) == fixture_site.PAINT_RGB  # JavaScript ran
            assert rgb.getpixel((20, 700)) == (255, 255, 255)
    # Nothing of that Chromium is left: not its process group, not any process on its profile.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert _leftovers(profile) == []


@pytest.mark.skipif(find_full_chromium() is None, reason="full chromium is not installed")
async def test_full_chromium_floor_and_the_naive_loop_capture() -> None:
    full = find_full_chromium()
    assert full is not None
    async with fixture_site.serve() as site:
        async with floor_browser(full) as browser:
            assert not is_headless_shell(browser.executable)  # started with --headless=new
            data = await browser.capture(site.url("/small"), PAGES["small"])
        naive_shot, seconds = await naive.naive_capture(site.url("/small"), PAGES["small"])
    assert seconds > 0
    for png in (data, naive_shot):
        rgb = Image.open(io.BytesIO(png)).convert("RGB")
        assert rgb.size == (1280, 800) and rgb.getpixel(fixture_site.PAINT_PIXEL) == fixture_site.PAINT_RGB


def _samples(spec: list[tuple[str, float]]) -> list[Sample]:
    return [Sample(status=status, latency_s=seconds, ok=status in ("200", "ok")) for status, seconds in spec]


def _synthetic_results() -> dict[str, Any]:
    # service: 10 successes at 0.1 .. 1.0 s plus two errors, over 5 s of wall time
    service = Run(_samples([("200", i / 10) for i in range(1, 11)] + [("503", 0.01), ("504", 30.0)]), wall_s=5.0)
    floor = Run(_samples([("ok", 0.2)] * 8), wall_s=4.0)
    warm = Run(_samples([("ok", 0.4)] * 8), wall_s=3.2)
    full = Run(_samples([("ok", 1.1)] * 4), wall_s=4.4)
    naive = Run(_samples([("ok", 2.0)] * 3), wall_s=6.0)
    record = report.scenario_record("small", 1, Stats.of(service), Stats.of(floor), Stats.of(naive),
                                    warm=Stats.of(warm), full=Stats.of(full))
    saturated = report.scenario_record("small", 4, Stats.of(Run(_samples([("200", 0.5)] * 20), 2.0)),
                                       Stats.of(Run(_samples([("ok", 0.5)] * 20), 2.0)),
                                       full=Stats.of(Run(_samples([("ok", 1.0)] * 8), 2.0)))
    overload_run = Run(_samples([("200", 0.4)] * 8 + [("503", 0.01)] * 20 + [("429", 0.06)] * 4), wall_s=1.0)
    return {
        "mode": "quick",
        "config": {"pool_size": 4, "deadline_s": 30.0},
        "machine": {"cpus": 2},
        "scenarios": [record, saturated],
        "overload": report.overload_record(8, 32, 1, overload_run, unloaded_p95_ms=record["p95_ms"],
                                           saturated_p95_ms=saturated["p95_ms"]),
        "jobs_backlog": {"jobs_queued": 20, "sync_p50_ms": 500.0, "sync_p95_ms": 600.0,
                         "unloaded_p50_ms": 200.0, "sync_latency_ratio": 2.5, "errors": {}},
        "soak": {"captures": 1000, "recycles": 10, "service_rss_growth_pct": 1.0, "chromium_rss_growth_pct": 3.0,
                 "slowest_ms": 900.0},
        "rss_growth_pct": report.growth_pct(1000.0, 1030.0),
        # the thumbnail 100 ms against the plain capture's 80 ms: 1.25x
        "thumbnail": [thumbs.record("small", Stats.of(Run(_samples([("200", 0.08)] * 5), 0.4)),
                                    Stats.of(Run(_samples([("200", 0.1)] * 5), 0.5)))],
    }


def test_report_fields_and_ratios(tmp_path: Path) -> None:
    results = _synthetic_results()
    path = report.write_results(tmp_path / "out", results)
    written = json.loads(path.read_text())
    record = written["scenarios"][0]
    assert set(report.SCENARIO_FIELDS) <= set(record)
    assert record["name"] == "small-c1" and record["concurrency"] == 1
    assert (record["requests"], record["ok"]) == (12, 10)
    assert record["errors"] == {"503": 1, "504": 1}  # errors by status, never in the latency figures
    assert record["p50_ms"] == pytest.approx(550.0)  # linear interpolation over 100..1000 ms
    assert record["p95_ms"] == pytest.approx(955.0)
    assert record["p99_ms"] == pytest.approx(991.0)
    assert record["throughput_per_s"] == pytest.approx(2.0)  # 10 successes / 5 s
    assert record["floor_p50_ms"] == pytest.approx(200.0)
    assert record["floor_throughput_per_s"] == pytest.approx(2.0)
    assert record["latency_ratio"] == pytest.approx(550.0 / 200.0, abs=1e-3)
    assert record["throughput_ratio"] == pytest.approx(1.0)
    assert record["warm_floor_p50_ms"] == pytest.approx(400.0)
    assert record["warm_latency_ratio"] == pytest.approx(550.0 / 400.0, abs=1e-3)
    assert record["full_floor_p50_ms"] == pytest.approx(1100.0)
    assert record["full_throughput_ratio"] == pytest.approx(2.0 / (4 / 4.4), abs=1e-3)
    assert record["max_ms"] == pytest.approx(1000.0)  # successes only
    assert record["slowest_ms"] == pytest.approx(30000.0)  # every answer: the 504 counts
    assert record["naive_p50_ms"] == pytest.approx(2000.0)
    assert record["naive_throughput_per_s"] == pytest.approx(0.5)
    assert (record["floor_requests"], record["floor_ok"]) == (8, 8)
    assert written["rss_growth_pct"] == pytest.approx(3.0)
    assert written["scenarios"][1]["naive_p50_ms"] is None  # naive runs at concurrency 1 only
    assert written["scenarios"][1]["warm_floor_p50_ms"] is None  # so does the warm floor
    assert written["scenarios"][1]["full_throughput_ratio"] == pytest.approx(2.5)

    overload = written["overload"]
    assert (overload["admitted"], overload["rejected"]) == (8, 24)
    assert overload["rejected_by_status"] == {"429": 4, "503": 20}
    assert overload["rejected_over_50ms"] == 4
    assert overload["admitted_p95_ratio"] == pytest.approx(400.0 / 955.0, abs=1e-3)


def test_targets_are_judged_from_the_results_document() -> None:
    verdicts = [t.passed for t in targets.evaluate(_synthetic_results())]
    assert verdicts == [
        False,  # small-page latency: 550 / 400 ms = 1.375x the warm floor
        True,  # saturated throughput: 10/s vs the cold floor's 10/s
        False,  # overload rejections: the four 429s took 60 ms
        True,  # admitted p95 400 ms vs 500 ms at the same concurrency without the crowd
        False,  # job backlog: sync p50 500 ms vs unloaded 200 ms = 2.5x
        True,  # RSS growth 3% over 1000 captures with 10 recycles
        True,  # the slowest answer (a 504) came at 30.0 s: not later than the deadline
        False,  # naive: 2.0/s vs 0.5/s is 4x, under 5x
        False,  # thumbnail: 100 / 80 ms = 1.25x the plain capture
        None,  # extract: not measured in these results
        None,  # no long-document PDF scenario in these results
        None,  # fair share: not measured (a quick run)
        None,  # batch: not measured (a quick run)
        None,  # upstream proxy: not measured in these results
        None,  # visual diff: not measured in these results
    ]
    assert all(line.startswith("SKIP") for line in (t.line() for t in targets.evaluate({})))


def _verdict(results: dict[str, Any], word: str) -> bool | None:
    [target] = [t for t in targets.evaluate(results) if word in t.name]
    return target.passed


def test_the_thumbnail_is_judged_against_the_plain_capture_of_the_same_page() -> None:
    results = _synthetic_results()
    [row] = results["thumbnail"]
    assert (row["plain_p50_ms"], row["thumb_p50_ms"], row["latency_ratio"]) == (80.0, 100.0, 1.25)
    assert "thumbnail small c=1: 320 px p50 100.0 ms vs the plain capture 80.0 ms = 1.25x" in report.summary(results)
    row.update(thumb_p50_ms=84.0, latency_ratio=1.05)
    assert _verdict(results, "thumbnail") is True
    row["errors"] = {"thumb 500": 1}  # a thumbnail that failed is no faster thumbnail
    assert _verdict(results, "thumbnail") is False
    results["thumbnail"] = [{**row, "page": "lazy"}]  # only the small page is judged
    assert _verdict(results, "thumbnail") is None
    row.update(page="small", errors={}, slowest_ms=31000.0)
    results["thumbnail"] = [row]
    assert _verdict(results, "deadline") is False  # its answers count against the deadline too


async def test_the_bench_thumbnail_request_gets_a_thumbnail(service: Service) -> None:
    handle = ServiceHandle(base_url=str(service.client.make_url("/")).rstrip("/"), api_key=service.key)
    spec = CaptureSpec("paint", "/paint", thumb_width=thumbs.THUMB_WIDTH)
    assert spec.query()["thumb_width"] == "320" and "thumb_width" not in CaptureSpec("paint", "/paint").query()
    async with aiohttp.ClientSession() as session:
        sample = await timed(lambda: handle.request(session, service.site.url, spec, "image"))
    assert sample.ok, sample
    params = {"url": service.site.url + "/paint", "api_key": service.key, **spec.query(), "response_type": "json"}
    body = await (await service.client.get("/v1/screenshot", params=params)).json()
    assert (body["width"], body["height"]) == (320, 200)


def test_extract_is_judged_on_the_small_page_and_the_long_document() -> None:
    results = _synthetic_results()
    plain, slower = (Stats.of(Run(_samples([("200", s)] * 5), 0.5)) for s in (0.08, 0.1))
    results["extract"] = [extract.record("small", plain, slower)]  # 100 / 80 ms = 1.25x
    assert _verdict(results, "extract") is True  # judged on what was measured (a run of --pages small)
    results["extract"] = []
    assert _verdict(results, "extract") is None
    results["extract"] = [extract.record("small", plain, slower)]
    results["extract"].append(extract.record("document", plain, plain))
    assert _verdict(results, "extract") is True
    assert "extract=markdown small c=1: p50 100.0 ms vs the plain capture 80.0 ms = 1.25x" in report.summary(results)
    results["extract"].append(extract.record("heavy", plain, Stats.of(Run(_samples([("200", 0.2)] * 5), 1.0))))
    assert _verdict(results, "extract") is True  # only the judged pages count
    results["extract"][1] = extract.record("document", plain, Stats.of(Run(_samples([("500", 0.05)] * 5), 1.0)))
    assert _verdict(results, "extract") is False  # content that failed is no faster content
    assert targets.slowest_answers(results)["extract heavy"] == 200.0


async def test_the_bench_extract_request_gets_content(service: Service) -> None:
    spec = dataclasses.replace(extract.plain_capture("small"), path="/paint", extract=extract.KIND)
    assert spec.format == "png" and extract.plain_capture("document").format == "png"
    params = {"url": service.site.url + spec.path, "api_key": service.key, **spec.query()}
    body = await (await service.client.get("/v1/screenshot", params=params)).json()
    assert set(body["content"]) == {"markdown"}, body


def test_latency_is_judged_against_the_warm_floor_and_throughput_against_the_cold_one() -> None:
    results = _synthetic_results()
    results["scenarios"][0]["warm_latency_ratio"] = 1.2  # 1.2x warm passes, whatever the cold ratio
    assert _verdict(results, "p50 at concurrency 1") is True
    results["scenarios"][1]["throughput_ratio"] = 0.99  # a hair under the cold floor fails
    assert _verdict(results, "saturated throughput") is False


def test_overload_judges_what_the_crowd_costs_the_admitted() -> None:
    results = _synthetic_results()
    overload = results["overload"]
    overload.update(admitted_p95_ratio=2.5, admitted_p95_vs_saturated=1.1)  # slower than c=1, as 4 slots are
    assert _verdict(results, "admitted p95") is True
    overload["admitted_p95_vs_saturated"] = 2.5  # the crowd itself slowed them down
    assert _verdict(results, "admitted p95") is False
    overload.update(admitted_p95_vs_saturated=None, admitted_p95_ratio=2.5)  # no saturated run: unloaded judges
    assert _verdict(results, "admitted p95") is False


def test_rss_growth_needs_the_whole_soak_with_recycles_to_pass() -> None:
    results = _synthetic_results()
    assert _verdict(results, "RSS growth") is True
    results["soak"]["recycles"] = 0
    assert _verdict(results, "RSS growth") is None  # no recycle: not enough to judge
    results["soak"].update(recycles=3, captures=480)
    assert _verdict(results, "RSS growth") is None  # a short soak: not enough either
    results["rss_growth_pct"] = 12.0
    assert _verdict(results, "RSS growth") is False  # but growth over the bound fails however short


def test_an_answer_after_the_deadline_fails_wherever_it_came() -> None:
    results = _synthetic_results()
    results["soak"]["slowest_ms"] = 30000.5
    [target] = [t for t in targets.evaluate(results) if "deadline" in t.name]
    assert target.passed is False and "soak" in target.detail
    results["config"]["deadline_s"] = 31.0
    assert _verdict(results, "deadline") is True


async def test_a_clocked_call_reports_its_own_time() -> None:
    async def warm() -> Answer:
        await asyncio.sleep(0.05)  # set-up, off the clock
        return Answer("ok", seconds=0.001)

    sample = await timed(warm)
    assert sample.ok and sample.latency_s == 0.001


def test_a_job_backlog_passes_only_if_sync_keeps_its_latency_and_the_jobs_finish() -> None:
    def backlog_verdict(**backlog: Any) -> bool | None:
        results = {"jobs_backlog": {"jobs_queued": 20, "sync_p50_ms": 300.0, "unloaded_p50_ms": 250.0,
                                    "sync_latency_ratio": 1.2, "jobs_drained_s": 14.0, **backlog}}
        [target] = [t for t in targets.evaluate(results) if "job backlog" in t.name]
        return target.passed

    assert backlog_verdict(jobs_succeeded=20) is True
    assert backlog_verdict(jobs_succeeded=17) is False  # starved or failed jobs are no pass
    assert backlog_verdict(jobs_succeeded=20, sync_latency_ratio=2.4) is False


def test_stats_of_a_run_without_successes() -> None:
    stats = Stats.of(Run(_samples([("503", 0.01), ("ConnectionError", 0.02)]), wall_s=1.0))
    assert stats.p50_ms is None and stats.throughput_per_s == 0.0
    assert stats.errors == {"503": 1, "ConnectionError": 1}
    assert report.ratio(None, 5.0) is None and report.ratio(1.0, 0.0) is None


def test_table_and_summary_render() -> None:
    text = report.summary(_synthetic_results())
    assert "small-c1" in text and "small-c4" in text and "overload:" in text


def test_server_timing_is_parsed_as_w3c_writes_it() -> None:
    header = 'auth;dur=0.41, cache;desc="hit, in memory";dur=1.5 ,, miss, db;dur="53", total;dur=61.07;dur=9'
    assert parse_server_timing(header) == {"auth": 0.41, "cache": 1.5, "miss": 0.0, "db": 53.0, "total": 61.07}
    assert parse_server_timing("") == {}
    for malformed in ("auth;dur=fast", ";dur=1", "auth dur=1", 'auth;desc="unterminated'):
        with pytest.raises(ValueError):
            parse_server_timing(malformed)


def test_the_service_header_parses_back_with_its_stages_within_the_total() -> None:
    timings = StageTimings()
    for stage in ("auth", "navigation", "capture", "navigation"):  # a stage may be counted in parts
        with timings.stage(stage):
            sum(range(1000))
    metrics = parse_server_timing(timings.header())
    assert list(metrics) == ["auth", "navigation", "capture", "total"]  # the stages in the order they run
    total = metrics.pop("total")
    assert all(ms >= 0 for ms in metrics.values()) and sum(metrics.values()) <= total


def _answered(latency_s: float, ok: bool = True, **metrics: float) -> Sample:
    return Sample(status="200" if ok else "502", latency_s=latency_s, ok=ok, stages=metrics)


def test_stage_p50s_and_what_lies_outside_the_stages() -> None:
    run = Run([
        _answered(0.100, auth=1, navigation=50, capture=30, total=90),  # other 9, outside 10
        _answered(0.120, auth=2, navigation=60, capture=40, total=110),  # other 8, outside 10
        _answered(0.200, auth=3, cache=5, total=20),  # a cache hit: other 12, outside 180
        _answered(5.0, ok=False, auth=900, total=4000),  # failures are not in the latency figures
        Sample(status="200", latency_s=0.3, ok=True),  # a service without Server-Timing
    ], wall_s=1.0)
    p50 = Stats.of(run).stages_p50_ms
    assert p50 == {"auth": 2.0, "cache": 5.0, "navigation": 55.0, "capture": 35.0, "other": 9.0,
                   "total": 90.0, "outside": 10.0}
    assert list(p50) == [name for name in stages.COLUMNS if name in p50]  # the order they run in
    assert Stats.of(Run([Sample(status="200", latency_s=0.1, ok=True)], 1.0)).stages_p50_ms == {}


def test_the_stages_are_shown_beside_the_latency_target_and_in_the_summary() -> None:
    results = _synthetic_results()
    assert stages.FIELD in results["scenarios"][0] and "where the service" not in report.summary(results)
    results["scenarios"][0][stages.FIELD] = {"auth": 0.4, "admission": 0.9, "navigation": 31.0, "capture": 19.5,
                                             "store": 0.6, "settle": 0.5, "other": 1.1, "total": 54.0,
                                             "outside": 4.2}
    [latency] = [t for t in targets.evaluate(results) if "p50 at concurrency 1" in t.name]
    assert "navigation 31 · capture 19.5" in latency.detail and "total 54 · outside 4.2 ms" in latency.detail
    text = report.summary(results)
    assert "where the service's time goes" in text and "small-c1: auth 0.4 · admission 0.9" in text
    assert "small-c4:" not in text.split("where the service's time goes")[1]  # no stages measured there


async def test_the_bench_reads_the_stages_a_real_service_reports(service: Service) -> None:
    handle = ServiceHandle(base_url=str(service.client.make_url("/")).rstrip("/"), api_key=service.key)
    spec = CaptureSpec("paint", "/paint")
    async with aiohttp.ClientSession() as session:
        samples = [await timed(lambda: handle.request(session, service.site.url, spec, "json")) for _ in range(3)]
    assert all(sample.ok for sample in samples), samples
    fresh = {"auth", "admission", "navigation", "capture", "store", "settle"}
    assert all(set(sample.stages) == {*fresh, "total"} for sample in samples)
    assert set(Stats.of(Run(samples, 1.0)).stages_p50_ms) == {*fresh, "other", "total", "outside"}


async def test_an_answer_carries_its_stages_into_the_sample() -> None:
    async def answer() -> Answer:
        return Answer("200", stages={"auth": 0.5, "total": 2.0})

    sample = await timed(answer)
    assert sample.ok and sample.stages == {"auth": 0.5, "total": 2.0}


@pytest.mark.skipif(not plot.available(), reason="matplotlib (the bench extra) is not installed")
def test_plot_is_written(tmp_path: Path) -> None:
    path = plot.write_plot(_synthetic_results(), tmp_path / "plot.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 600


async def test_run_load_respects_the_request_budget_and_records_outcomes() -> None:
    statuses = iter(["200", "503", "200", "boom", "200", "200", "200", "200"])

    async def call() -> str:
        await asyncio.sleep(0)
        status = next(statuses)
        if status == "boom":
            raise ConnectionResetError("gone")
        return status

    run_ = await run_load(call, concurrency=3, max_requests=6, max_seconds=60)
    assert len(run_.samples) == 6
    assert sorted(s.status for s in run_.samples) == ["200", "200", "200", "200", "503", "ConnectionResetError"]
    assert sum(s.ok for s in run_.samples) == 4

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "503"

    burst = await run_burst(counted, concurrent=5, waves=2, pause=0)
    assert calls == 10 and len(burst.samples) == 10 and not any(s.ok for s in burst.samples)


async def test_run_alternating_takes_turns() -> None:
    order: list[str] = []

    def side(name: str, status: str) -> Any:
        async def call() -> str:
            order.append(name)
            return status

        return call

    floor_run, service_run = await run_alternating([side("floor", "ok"), side("service", "200")], 3, 60)
    assert order == ["floor", "service"] * 3
    assert [len(floor_run.samples), len(service_run.samples)] == [3, 3]
    assert all(s.ok for s in floor_run.samples + service_run.samples)
    assert floor_run.wall_s == pytest.approx(sum(s.latency_s for s in floor_run.samples))


async def test_run_alternating_settles_before_every_request_off_the_clock() -> None:
    order: list[str] = []

    async def settle() -> None:
        order.append("settle")

    async def call() -> str:
        order.append("call")
        return "ok"

    floor_run, service_run = await run_alternating([call, call], 2, 60, settle=settle)
    assert order == ["settle", "call"] * 4
    assert len(floor_run.samples) == len(service_run.samples) == 2


async def test_run_chunks_takes_turns_in_chunks_a_b_b_a_and_settles_before_each() -> None:
    order: list[str] = []

    def side(name: str) -> Any:
        async def call() -> str:
            order.append(name)
            return "ok"

        return call

    async def settle() -> None:
        order.append("settle")

    first, second = await run_chunks([side("a"), side("b")], 2, 6, 60, settle=settle, chunks=3)
    turns = [name for i, name in enumerate(order) if i == 0 or name != order[i - 1]]
    assert turns == ["settle", "a", "settle", "b", "settle", "b", "settle", "a", "settle", "a", "settle", "b"]
    assert order.count("a") == order.count("b") == 6  # chunks of 2 requests, never more than asked
    assert len(first.samples) == len(second.samples) == 6 and all(s.ok for s in first.samples + second.samples)
    assert first.wall_s >= sum(s.latency_s for s in first.samples) / 2  # two workers share each chunk's time


async def test_machine_quiet_gives_up_on_a_busy_machine() -> None:
    spinning = threading.Event()

    def spin() -> None:
        while not spinning.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:  # one spinning core is never below a tenth of one
        assert not await procstats.machine_quiet(window=0.05, busy=0.1, bound=0.3)
    finally:
        spinning.set()
        worker.join()


def test_generated_config_loads_with_the_real_loader(tmp_path: Path) -> None:
    text = bench_config(tmp_path, 18080, 43210, ServiceOptions(pool_size=3, max_queue=2))
    path = tmp_path / "bench.toml"
    path.write_text(text)
    settings = config_loading.load(path, environ={})
    assert settings.server.port == 18080
    assert (settings.browser.pool_size, settings.browser.max_queue) == (3, 2)
    assert settings.egress.allow == ["127.0.0.1:43210"]
    assert set(settings.plans) == {BENCH_PLAN}
    plan = settings.plans[BENCH_PLAN]
    assert plan.requests_per_second >= 1000 and plan.concurrency >= 1000 and plan.monthly_captures >= 10**8
    assert settings.storage.local.path.startswith(str(tmp_path))


def test_quick_plan_shape() -> None:
    quick = make_plan(quick=True, pool_size=4)
    assert quick.levels["small"] == (1, 2, 4) and quick.budget_s is not None
    assert quick.soak_captures == 500 and quick.naive_pages == ("small",) and quick.levels["document"] == (1,)
    full = make_plan(quick=False, pool_size=4)
    assert set(full.levels) == set(PAGES) and full.levels["heavy"] == (1, 2, 4, 8) and full.budget_s is None
    custom = make_plan(quick=True, pool_size=4, pages=["slow"], concurrency=[8, 2, 2])
    assert custom.levels == {"slow": (2, 8)}
    # the thumbnail phase: the judged small page, and in a full run the lazy full page too
    assert (thumbs.pages(quick), thumbs.pages(full), thumbs.pages(custom)) == (("small",), ("small", "lazy"), ())
    # the visual-diff phase: the small page's viewport and the 16384 px long page, unchanged and
    # changing, when small is measured
    both = ("small", "long", "small-changing", "long-changing")
    assert (diffs.pages(quick), diffs.pages(full), diffs.pages(custom)) == (both, both, ())
    # no queue: concurrency beyond the slots is the overload phase's business, not a scenario's
    unqueued = make_plan(quick=False, pool_size=2, capacity=2)
    assert unqueued.levels["small"] == (1, 2)
    assert make_plan(quick=False, pool_size=2, capacity=2, concurrency=[4]).levels["small"] == (4,)


def test_cli_parser_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="screenshot-service")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--out", str(tmp_path), "--concurrency", "1,4"])
    assert args.func is run and args.quick and args.concurrency == [1, 4]
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        parser.parse_args(["bench", "--pages", "nope"])

    path = report.write_results(tmp_path, _synthetic_results())
    checked = parser.parse_args(["bench", "--check", str(path), "--strict"])
    assert run(checked, config.Settings()) == 1  # two targets FAIL in the synthetic document
    out = capsys.readouterr().out
    assert "PASS  saturated throughput" in out and "FAIL  small-page p50" in out


def test_procstats_reads_this_process() -> None:
    assert procstats.rss_kib(os.getpid()) > 0
    assert (procstats.status_kib(os.getpid(), "VmHWM") or 0) >= procstats.rss_kib(os.getpid()) // 2
    assert os.getpid() in procstats.descendants(os.getppid())
    assert procstats.rss_kib(2**22 + 12345) == 0  # no such process
    assert procstats.cpu_seconds(os.getpid()) > 0  # importing pytest alone costs CPU
    assert procstats.cpu_seconds(2**22 + 12345) == 0.0
    assert procstats.alive(os.getpid()) and not procstats.alive(2**22 + 12345)
    assert os.getpid() in procstats.children(os.getppid())


def test_binaries_name_path_and_version() -> None:
    fastest = binaries.describe(find_executable())
    assert fastest is not None and fastest["path"] and fastest["version"]
    assert fastest["headless_shell"] == is_headless_shell(fastest["path"])
    assert binaries.describe(None) is None


async def test_service_chromium_cpu_is_unknown_not_negative_when_a_browser_went_away() -> None:
    """A recycled browser takes its renderers' CPU with it (init reaps them, not the service):
    the reading over that window is None, never an undercount; with the browsers unchanged it is known."""
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60']); print(child.pid, flush=True); child.wait(); time.sleep(60)",
        stdout=asyncio.subprocess.PIPE)
    try:
        assert parent.stdout is not None
        browser = int(await parent.stdout.readline())
        target = cast(BenchTarget, SimpleNamespace(service=SimpleNamespace(pid=parent.pid), floors={}))
        before = Cpu.read(target)
        assert before.browsers == {browser}
        steady = Cpu.read(target) - before
        assert steady.chromium is not None and steady.chromium >= 0
        os.kill(browser, signal.SIGKILL)
        assert await wait_for(lambda: browser not in procstats.children(parent.pid))
        assert (Cpu.read(target) - before).chromium is None
    finally:
        parent.kill()
        await parent.wait()


def test_fair_share_passes_only_if_the_third_key_is_never_refused_and_waits_at_most_one_attacker_capture() -> None:
    fair = {"queue_was_full": True, "third_key_requests": 5, "third_key_refused": 0,
            "third_key_longest_wait_ms": 900.0, "attacker_capture_p95_ms": 2000.0, "third_key_wait_ratio": 0.45}
    assert _verdict({"fair_share": fair}, "fair share") is True
    assert _verdict({"fair_share": {**fair, "third_key_refused": 1}}, "fair share") is False
    assert _verdict({"fair_share": {**fair, "third_key_wait_ratio": 1.6}}, "fair share") is False
    assert _verdict({"fair_share": {**fair, "queue_was_full": False}}, "fair share") is None


def test_the_visual_diff_is_judged_by_its_cost_on_both_pages_unchanged_and_changing() -> None:
    results = _synthetic_results()
    plain, compared, costly = (Stats.of(Run(_samples([("200", s)] * 5), 0.5)) for s in (0.08, 0.096, 0.12))
    results["diff"] = [diffs.record("small", plain, compared)]  # 96 / 80 ms: +0.2
    assert results["diff"][0]["diff_cost"] == 0.2
    assert _verdict(results, "visual diff") is True
    results["diff"].append(diffs.record("long", plain, costly))  # 120 / 80 ms: +0.5
    assert _verdict(results, "visual diff") is False
    results["diff"][1] = diffs.record("long", plain, Stats.of(Run(_samples([("no_diff", 0.08)] * 5), 0.5)))
    assert _verdict(results, "visual diff") is False  # an answer without a diff is no cheaper diff
    assert "diff long" in targets.slowest_answers(results)
    results["diff"][1] = diffs.record("long", plain, compared)
    assert _verdict(results, "visual diff") is True
    results["diff"].append(diffs.record("small-changing", plain, compared))
    assert _verdict(results, "visual diff") is True
    results["diff"].append(diffs.record("long-changing", plain, costly))  # a changed page is judged too
    assert _verdict(results, "visual diff") is False
    results["diff"][3] = diffs.record("long-changing", plain, compared)
    assert _verdict(results, "visual diff") is True


async def test_the_bench_diff_request_is_compared_and_the_long_page_is_16384_px(service: Service) -> None:
    handle = ServiceHandle(base_url=str(service.client.make_url("/")).rstrip("/"), api_key=service.key)
    plain = CaptureSpec("paint", "/paint", width=400, height=300)
    compared = dataclasses.replace(plain, compare_to="previous")
    assert compared.query()["compare_to"] == "previous" and "compare_to" not in plain.query()
    async with aiohttp.ClientSession() as session:
        first = await timed(lambda: handle.request(session, service.site.url, compared, "image"))
        await timed(lambda: handle.request(session, service.site.url, plain, "image"))
        second = await timed(lambda: handle.request(session, service.site.url, compared, "json"))
    assert first.status == "no_diff" and second.ok, (first, second)  # the first had no baseline yet
    assert diffs.LONG.full_page and fixture_site.LONG_HEIGHT == 16384
    assert [spec.path for spec in diffs.CHANGING] == ["/small?changing=1", "/long?changing=1"]
