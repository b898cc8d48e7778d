"""Asynchronous jobs end to end on SQLite: real Chromium, the local test site, real webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.egress.resolver import StaticResolver, SystemResolver
from screenshot_service.jobs.models import Job, now_utc
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.jobs.store import MAX_RUNS
from screenshot_service.jobs.webhooks import signature, verify
from screenshot_service.limits.keys import create_key
from screenshot_service.state.sqlite import SqliteStateStore
from tests import site
from tests.conftest import image_of, kill_process_group, wait_for
from tests.jobs_helpers import (
    JobsApp,
    descendants,
    kill_tree,
    plan,
    poll_until_done,
    settings_for,
    spawn_service,
    start_app,
    wait_gone,
    webhook_receiver,
)
from tests.redis_server import free_port
from tests.site import PAINT_RGB

if TYPE_CHECKING:
    from tests.conftest import TestSite

MakeJobs = Callable[..., Awaitable[JobsApp]]


@pytest.fixture
async def make_jobs(aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool) -> MakeJobs:
    """make_jobs(root="a", plans=None, tuning=None, key=None, resolver=None, **settings sections)."""

    async def make(*, root: str = "svc", plans: dict[str, Any] | None = None, tuning: dict[str, float] | None = None,
                   key: Any = None, key_plan: str = "jobs", **sections: Any) -> JobsApp:  # fmt: skip
        overrides = {"resolver": sections.pop("resolver")} if "resolver" in sections else {}
        settings = settings_for(tmp_path / root, test_site, plans=plans, **sections)
        return await start_app(aiohttp_client, settings, test_site, shared_pool, key=key, key_plan=key_plan,
                               tuning=tuning, **overrides)  # fmt: skip

    return make


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def reservations(root: Path) -> dict[str, int]:
    with sqlite3.connect(root / "state.sqlite3") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM quota_reservations GROUP BY state").fetchall())


# -- the happy path ------------------------------------------------------------------------------
async def test_a_job_polled_before_and_after_completion(make_jobs: MakeJobs, tmp_path: Path) -> None:
    svc = await make_jobs()
    response = await svc.submit("/paint", delay=800, width=640, height=480)
    assert response.status == 202
    created = await response.json()
    assert created["id"].startswith("job_") and created["status"] == "queued"
    assert created["status_url"] == f"http://{svc.client.host}:{svc.client.port}/v1/jobs/{created['id']}"
    assert response.headers["Location"] == created["status_url"]
    assert created["created_at"].endswith("Z")
    assert created["started_at"] is None and created["finished_at"] is None
    assert created["result"] is None and created["error"] is None
    assert response.headers["X-Quota-Remaining"] == str(10**9 - 1)

    early = await svc.job(created["id"])
    assert early["status"] in ("queued", "running")
    done = await svc.wait_done(created["id"])
    assert done["status"] == "succeeded", done
    assert done["error"] is None and done["started_at"] and done["finished_at"]
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    result = done["result"]
    assert set(result) >= {"url", "expires_at", "format", "width", "height", "bytes", "took_ms", "cached",
                           "blocked_requests"}  # fmt: skip
    assert (result["width"], result["height"], result["format"]) == (640, 480, "png")
    assert result["took_ms"] >= 800  # the delay ran inside the job's own capture
    image = await svc.client.get(_path(result["url"]))
    assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    assert image_of(await image.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert await svc.credits_used() == 1
    assert reservations(tmp_path / "svc") == {"committed": 1}


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~10 s on an idle machine; much more when the CPU is shared
async def test_a_hundred_jobs_on_a_small_pool_all_succeed(make_jobs: MakeJobs, tmp_path: Path) -> None:
    svc = await make_jobs(jobs={"workers": 2})  # the shared pool has 2 slots
    responses = await asyncio.gather(*(svc.submit("/paint", width=320, height=240) for _ in range(100)))
    assert [r.status for r in responses] == [202] * 100
    ids = [(await r.json())["id"] for r in responses]
    assert len(set(ids)) == 100
    finished = [await svc.wait_done(job_id, timeout=240) for job_id in ids]  # one poller: the jobs run meanwhile
    assert [job["status"] for job in finished] == ["succeeded"] * 100
    assert len({job["result"]["url"] for job in finished}) == 100
    assert await svc.credits_used() == 100
    assert reservations(tmp_path / "svc") == {"committed": 100}


async def test_a_failed_job_carries_the_error_object_and_is_not_charged(make_jobs: MakeJobs, tmp_path: Path) -> None:
    svc = await make_jobs()
    created = await svc.submit_ok("/slow?s=5", timeout=1)
    done = await svc.wait_done(created["id"])
    assert done["status"] == "failed" and done["result"] is None
    assert done["error"]["status"] == 504 and done["error"]["code"] == "capture_timeout"
    assert done["error"]["message"]
    assert await svc.credits_used() == 0
    assert reservations(tmp_path / "svc") == {"refunded": 1}


async def test_sync_requests_keep_working_while_a_backlog_of_jobs_runs(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 1})
    with site.held_back() as token:  # the jobs' page answers once the sync capture is in
        ids = [(await svc.submit_ok(f"/slow?gate={token}"))["id"] for _ in range(20)]
        assert await wait_for(lambda: _status_is(svc, ids[0], "running"), 30)
        response = await svc.client.get(
            "/v1/screenshot", params={"url": svc.site.url + "/paint"}, headers=svc.auth()
        )
        assert response.status == 200, await response.text()
        image = await svc.client.get(_path((await response.json())["url"]))
        assert image_of(await image.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
        statuses = [(await svc.job(job_id))["status"] for job_id in ids]
    assert statuses == ["running"] + ["queued"] * 19  # the backlog was really there while the sync capture ran
    # How much the backlog costs sync latency is a ratio in the benchmark (jobs_backlog), not a
    # timed assertion here.
    finished = await asyncio.gather(*(svc.wait_done(job_id, timeout=120) for job_id in ids))
    assert {job["status"] for job in finished} == {"succeeded"}


def _nice(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone meanwhile (a disposed renderer)
    return int(stat[stat.rfind(")") + 2 :].split()[16])  # after "pid (comm)": state=0 ... nice=16


def _session_nice(pid: int) -> int | None:
    """The nice of ``pid``'s autogroup ("/autogroup-123 nice 5"), or None without autogroup."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except OSError:
        return None


async def test_jobs_render_in_their_own_chromium_below_the_sync_lane(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, make_pool: Callable[..., Any]
) -> None:
    """With a jobs lane, a backlog can only take the CPU that sync captures leave idle: its
    Chromium (renderers included) runs 15 nice steps below the service and the sync one."""
    pool = await make_pool(job_slots=1, pool_size=1)
    svc = await start_app(aiohttp_client, settings_for(tmp_path / "svc", test_site, jobs={"workers": 1}),
                          test_site, pool)  # fmt: skip
    done = await svc.wait_done((await svc.submit_ok("/paint", width=320, height=240))["id"])
    assert done["status"] == "succeeded", done
    image = await svc.client.get(_path(done["result"]["url"]))
    assert image_of(await image.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    sync = await svc.client.get("/v1/screenshot", params={"url": svc.site.url + "/paint"}, headers=svc.auth())
    assert sync.status == 200, await sync.text()
    stats = pool.stats()
    assert (stats["jobs_size"], stats["jobs_captures"], stats["captures"]) == (1, 1, 2)
    assert stats["jobs_in_use"] == 0 and stats["in_use"] == 0

    def nices(lane: str) -> set[int | None]:
        [browser] = pool.chromium_pids(lane)
        tree = [browser, *descendants(browser)]
        assert len(tree) > 2  # the browser, its zygotes, its renderers
        return {_nice(pid) for pid in tree} - {None}

    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert nices("jobs") == {min(19, own + 15)}  # even as root, where Chromium sets its own
    [sync_browser] = pool.chromium_pids("sync")
    assert nices("sync") and (_nice(sync_browser) or 0) <= own  # not niced: Chromium ranks its own threads
    if _session_nice(sync_browser) is not None:  # the kernel shares CPU between sessions first
        assert (_session_nice(sync_browser), _session_nice(pool.chromium_pids("jobs")[0])) == (5, 15)


async def test_a_crash_of_the_jobs_chromium_is_retried_and_leaves_the_sync_lane_alone(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, make_pool: Callable[..., Any]
) -> None:
    pool = await make_pool(job_slots=1, pool_size=1)
    svc = await start_app(aiohttp_client, settings_for(tmp_path / "svc", test_site, jobs={"workers": 1}),
                          test_site, pool)  # fmt: skip
    [sync_browser] = pool.chromium_pids("sync")
    [jobs_browser] = pool.chromium_pids("jobs")
    seen = test_site.log.count("/slow")
    with site.held_back() as token:  # the page answers once its Chromium is dead
        created = await svc.submit_ok(f"/slow?gate={token}", width=320, height=240)
        assert await wait_for(lambda: pool.stats()["jobs_in_use"] == 1)
        assert await wait_for(lambda: test_site.log.count("/slow") > seen, 30)  # the jobs Chromium is loading it
        kill_process_group(jobs_browser)
    done = await svc.wait_done(created["id"])
    assert done["status"] == "succeeded", done  # retried on the relaunched jobs Chromium
    assert pool.stats()["restarts"] == 1 and pool.chromium_pids("sync") == [sync_browser]
    assert pool.chromium_pids("jobs") != [jobs_browser]
    sync = await svc.client.get("/v1/screenshot", params={"url": svc.site.url + "/paint"}, headers=svc.auth())
    assert sync.status == 200
    assert await svc.credits_used() == 2  # the job once, despite its two runs


async def test_an_opt_in_cache_hit_answers_a_job_without_a_charge(make_jobs: MakeJobs, tmp_path: Path) -> None:
    svc = await make_jobs()
    first = await svc.wait_done((await svc.submit_ok("/paint", cache=True, width=300, height=200))["id"])
    second = await svc.wait_done((await svc.submit_ok("/paint", cache=True, width=300, height=200))["id"])
    assert first["result"]["cached"] is False and second["result"]["cached"] is True
    assert second["result"]["url"] == first["result"]["url"]
    assert await svc.credits_used() == 1  # the hit's reserved credit went back
    assert reservations(tmp_path / "svc") == {"committed": 1, "refunded": 1}


# -- cancel, visibility, limits -------------------------------------------------------------------------
async def test_canceling_a_queued_job_refunds_its_credit(make_jobs: MakeJobs, tmp_path: Path) -> None:
    svc = await make_jobs(jobs={"workers": 0})  # nothing runs: the job stays queued
    created = await svc.submit_ok()
    assert await svc.credits_used() == 1  # reserved at enqueue
    response = await svc.client.delete(f"/v1/jobs/{created['id']}", headers=svc.auth())
    assert response.status == 200
    canceled = await response.json()
    assert canceled["status"] == "canceled" and canceled["finished_at"] and canceled["result"] is None
    assert await svc.credits_used() == 0
    again = await svc.client.delete(f"/v1/jobs/{created['id']}", headers=svc.auth())
    assert again.status == 200 and (await again.json())["status"] == "canceled"
    assert (await svc.job(created["id"]))["status"] == "canceled"
    assert await svc.credits_used() == 0
    assert reservations(tmp_path / "svc") == {"refunded": 1}


async def test_running_and_finished_jobs_cannot_be_canceled(make_jobs: MakeJobs) -> None:
    svc = await make_jobs()
    with site.held_back() as token:  # the page answers once the cancel was refused
        created = await svc.submit_ok(f"/slow?gate={token}")
        assert await wait_for(lambda: _status_is(svc, created["id"], "running"), 30)
        running = await svc.client.delete(f"/v1/jobs/{created['id']}", headers=svc.auth())
    assert running.status == 409
    error = (await running.json())["error"]
    assert error["code"] == "job_not_cancelable" and error["details"]["status"] == "running"
    assert (await svc.wait_done(created["id"]))["status"] == "succeeded"
    finished = await svc.client.delete(f"/v1/jobs/{created['id']}", headers=svc.auth())
    assert finished.status == 409 and (await finished.json())["error"]["details"]["status"] == "succeeded"
    assert await svc.credits_used() == 1


async def test_a_job_is_visible_only_to_the_key_that_created_it(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    created = await svc.submit_ok()
    _, other = await svc.new_key()
    for method in ("GET", "DELETE"):
        response = await svc.client.request(method, f"/v1/jobs/{created['id']}", headers=svc.auth(other))
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    assert (await svc.job(created["id"]))["status"] == "queued"  # the other key's DELETE did nothing
    for missing in ("job_" + "0" * 24, "nope", "job_../../etc"):
        response = await svc.client.get(f"/v1/jobs/{missing}", headers=svc.auth())
        assert response.status == 404
    unauthenticated = await svc.client.get(f"/v1/jobs/{created['id']}")
    assert unauthenticated.status == 401


async def test_max_queued_jobs_is_a_429_and_the_credit_goes_back(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0}, plans={"jobs": plan(max_queued_jobs=2)})
    first = await svc.submit_ok()
    await svc.submit_ok()
    third = await svc.submit()
    assert third.status == 429 and "Retry-After" in third.headers
    error = (await third.json())["error"]
    assert error["code"] == "concurrency_limited" and error["details"]["max_queued_jobs"] == 2
    assert await svc.credits_used() == 2
    await svc.client.delete(f"/v1/jobs/{first['id']}", headers=svc.auth())
    assert (await svc.submit()).status == 202  # a canceled job no longer counts


async def test_quota_is_checked_at_enqueue(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0}, plans={"jobs": plan(monthly_captures=2)})
    await svc.submit_ok()
    await svc.submit_ok()
    response = await svc.submit()
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "quota_exceeded"
    assert response.headers["X-Quota-Remaining"] == "0"
    assert await svc.credits_used() == 2


@pytest.mark.parametrize(
    ("options", "status", "code", "field"),
    [
        ({"widht": 300}, 400, "invalid_parameter", "widht"),
        ({"response_type": "image"}, 400, "invalid_parameter", "response_type"),
        ({"webhook_url": "ftp://example.com/x"}, 400, "invalid_url", "webhook_url"),
        ({"webhook_url": "http://10.0.0.7/hook"}, 400, "blocked_target", "webhook_url"),
        ({"webhook_url": "http://[::ffff:127.0.0.1]:9/hook"}, 400, "blocked_target", "webhook_url"),
        ({"webhook_url": 12}, 400, "invalid_parameter", "webhook_url"),
        ({"url": "http://127.0.0.1:9/"}, 400, "blocked_target", "url"),
        ({"s3": {"bucket": "b", "region": "r", "access_key_id": "a", "secret_access_key": "s"}},
         400, "invalid_parameter", "s3"),  # credentials are never stored, and a job must wait in the store
    ],
)
async def test_bad_submissions_are_refused_at_once_and_not_charged(
    make_jobs: MakeJobs, options: dict[str, Any], status: int, code: str, field: str
) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    body = {"url": svc.site.url + "/paint", **options}
    response = await svc.client.post("/v1/jobs", json=body, headers=svc.auth())
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert field in json.dumps(error["details"])
    assert await svc.credits_used() == 0


# -- idempotency -----------------------------------------------------------------------------------------
async def test_idempotency_key_replays_the_job_and_refuses_another_body(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    headers = {**svc.auth(), "Idempotency-Key": "order-42"}
    body = {"url": svc.site.url + "/paint", "width": 400}
    first = await svc.client.post("/v1/jobs", json=body, headers=headers)
    assert first.status == 202
    job = await first.json()
    # The same body again, re-serialised in another key order with the key in the body instead.
    replay_body = json.dumps({"width": 400, "api_key": svc.key, "url": svc.site.url + "/paint"})
    replay = await svc.client.post("/v1/jobs", data=replay_body, headers={"Idempotency-Key": "order-42",
                                                                          "Content-Type": "application/json"})
    assert replay.status == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["id"] == job["id"]
    assert replay.headers["Location"] == job["status_url"]
    assert await svc.credits_used() == 1  # a replay is not a second capture

    mismatch = await svc.client.post("/v1/jobs", json={**body, "width": 500}, headers=headers)
    assert mismatch.status == 422
    error = (await mismatch.json())["error"]
    assert error["code"] == "idempotency_mismatch" and error["details"]["job_id"] == job["id"]
    assert await svc.credits_used() == 1

    # Keys are scoped per API key: another caller's "order-42" is its own job.
    _, other = await svc.new_key()
    theirs = await svc.client.post("/v1/jobs", json=body, headers={**svc.auth(other), "Idempotency-Key": "order-42"})
    assert theirs.status == 202 and (await theirs.json())["id"] != job["id"]

    bad = await svc.client.post("/v1/jobs", json=body, headers={**svc.auth(), "Idempotency-Key": "x" * 300})
    assert bad.status == 400 and "Idempotency-Key" in json.dumps(await bad.json())


async def test_concurrent_retries_with_one_idempotency_key_make_one_job(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    responses = await asyncio.gather(*(svc.submit(headers={"Idempotency-Key": "burst"}) for _ in range(10)))
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status for r in responses).count(202) == 1
    assert await svc.credits_used() == 1  # the losers' reservations went back


# -- webhooks ----------------------------------------------------------------------------------------------
def _check_signature(secret: str, header: str, body: bytes, *, sent_after: float, received_at: float) -> int:
    """The receiver's side, written out independently of the service's code.

    The timestamp must be the signing time: not before the job was submitted, not after receipt.
    """
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), "signature does not verify"
    assert int(sent_after) <= timestamp <= received_at, (sent_after, timestamp, received_at)
    return timestamp


async def _status_is(svc: Any, job_id: str, status: str) -> bool:
    return (await svc.job(job_id))["status"] == status


async def _webhook_settled(svc: Any, job_id: str) -> dict[str, Any]:
    """The job's webhook state once it is no longer pending (delivered or given up), within a bound."""

    async def settled() -> bool:
        return (await svc.job(job_id))["webhook"]["status"] != "pending"

    assert await wait_for(settled, 60), f"webhook of {job_id} still pending after 60 s"
    return dict((await svc.job(job_id))["webhook"])


async def test_the_webhook_receives_the_signed_final_job(make_jobs: MakeJobs, test_site: TestSite) -> None:
    async with webhook_receiver() as receiver:
        svc = await make_jobs(egress={"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{receiver.port}"]})
        submitted = time.time()
        created = await svc.submit_ok("/paint", webhook_url=receiver.url)
        done = await svc.wait_done(created["id"])
        assert done["status"] == "succeeded"
        assert await _webhook_settled(svc, created["id"]) == {"status": "delivered", "attempts": 1}
        assert len(receiver.received) == 1
        hit = receiver.received[0]
        assert hit.headers["Content-Type"] == "application/json"
        _check_signature(svc.record.webhook_secret, hit.headers["X-Signature"], hit.body,
                         sent_after=submitted, received_at=hit.at)  # fmt: skip
        with pytest.raises(AssertionError):
            _check_signature("whsec_wrong", hit.headers["X-Signature"], hit.body,
                             sent_after=submitted, received_at=hit.at)  # fmt: skip
        payload = json.loads(hit.body)
        final = await svc.job(created["id"])
        assert final["webhook"] == {"status": "delivered", "attempts": 1}
        assert payload == {k: v for k, v in final.items() if k != "webhook"}
        assert payload["status"] == "succeeded" and payload["result"]["url"]


async def test_a_failing_webhook_is_retried_with_backoff_then_given_up(make_jobs: MakeJobs, test_site: TestSite) -> None:
    async with webhook_receiver() as receiver:
        receiver.statuses = [500, 503]  # then 200
        svc = await make_jobs(egress={"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{receiver.port}"]},
                              tuning={"webhook_backoff": 0.2})  # fmt: skip
        submitted = time.time()
        created = await svc.submit_ok("/paint", webhook_url=receiver.url)
        await svc.wait_done(created["id"])
        assert await _webhook_settled(svc, created["id"]) == {"status": "delivered", "attempts": 3}
        times = [hit.at for hit in receiver.received]
        assert len(times) == 3
        # Spacing at least the backoff (a lower bound: a loaded machine only widens it), not a speed.
        assert times[1] - times[0] >= 0.18 and times[2] - times[1] >= 0.38  # 0.2 s, then doubled
        for hit in receiver.received:  # every attempt signed afresh, every one verifies
            _check_signature(svc.record.webhook_secret, hit.headers["X-Signature"], hit.body,
                             sent_after=submitted, received_at=hit.at)  # fmt: skip

        receiver.received.clear()
        receiver.statuses = [500] * 10
        failing = await svc.submit_ok("/paint", webhook_url=receiver.url)
        await svc.wait_done(failing["id"])
        await _webhook_settled(svc, failing["id"])
        final = await svc.job(failing["id"])
        assert final["status"] == "succeeded" and final["webhook"] == {"status": "failed", "attempts": 3}
        assert len(receiver.received) == 3  # webhook_attempts


async def test_a_webhook_host_that_rebinds_to_loopback_is_refused_at_delivery(
    make_jobs: MakeJobs, test_site: TestSite
) -> None:
    async with webhook_receiver() as receiver:
        # Public for the check at submit time, loopback ever after: the proxy must catch it.
        answers = iter(["93.184.216.34"])

        class Rebinding(StaticResolver):
            async def resolve(self, host: str, port: int) -> list[Any]:
                if host == "hook.example":
                    self.mapping["hook.example"] = [__import__("ipaddress").ip_address(next(answers, "127.0.0.1"))]
                return await super().resolve(host, port)

        resolver = Rebinding({}, fallback=SystemResolver())
        svc = await make_jobs(resolver=resolver)
        created = await svc.submit_ok("/paint", webhook_url=f"http://hook.example:{receiver.port}/hook")
        await svc.wait_done(created["id"])
        assert (await _webhook_settled(svc, created["id"]))["status"] == "failed"
        assert receiver.received == []
        assert resolver.calls.count("hook.example") >= 2  # checked at submit, checked again by the proxy


# -- durability --------------------------------------------------------------------------------------------
async def test_a_graceful_stop_gives_running_jobs_back_and_a_restart_runs_everything(
    make_jobs: MakeJobs, tmp_path: Path
) -> None:
    first = await make_jobs(root="same", jobs={"workers": 2}, server={"drain_seconds": 0})
    with site.held_back() as token:  # the jobs' page loads only once the first instance is gone
        ids = [(await first.submit_ok(f"/slow?gate={token}"))["id"] for _ in range(5)]

        async def one_running() -> bool:
            return any([await _status_is(first, job_id, "running") for job_id in ids])

        assert await wait_for(one_running, 30)
        await first.client.close()  # drain_seconds=0: the running captures are cut short
    with sqlite3.connect(tmp_path / "same" / "state.sqlite3") as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM jobs")]
    assert statuses == ["queued"] * 5  # given back, not failed

    second = await make_jobs(root="same", key=(first.record, first.key))
    finished = [await second.wait_done(job_id) for job_id in ids]
    assert [job["status"] for job in finished] == ["succeeded"] * 5
    assert await second.credits_used() == 5
    assert reservations(tmp_path / "same") == {"committed": 5}


async def test_a_job_that_keeps_killing_its_process_is_failed_not_retried_forever(
    make_jobs: MakeJobs, tmp_path: Path
) -> None:
    svc = await make_jobs(root="poison", jobs={"workers": 0})
    created = await svc.submit_ok()
    await svc.client.close()
    # As if MAX_RUNS processes had died running it (each claim counts a run).
    with sqlite3.connect(tmp_path / "poison" / "state.sqlite3") as db:
        db.execute("UPDATE jobs SET runs = ?, status = 'running', owner = 'dead' WHERE id = ?",
                   (MAX_RUNS, created["id"]))  # fmt: skip
    again = await make_jobs(root="poison", key=(svc.record, svc.key))
    done = await again.wait_done(created["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "internal_error"
    assert await again.credits_used() == 0


async def test_expired_job_records_are_swept(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "state.sqlite3")
    try:
        job = Job(id="job_" + "a" * 24, key_id="key_x", status="queued", options={"url": "http://x/"},
                  webhook_url=None, base_url="http://h", created_at=now_utc(), reservation_id="r", period="2026-01")  # fmt: skip
        await store.create(job, max_active=10, ttl=3600)
        assert await store.sweep() == 0
        claimed = await store.claim("me", 30)
        assert claimed is not None
        await store.finish(claimed.with_changes(status="succeeded", finished_at=now_utc()), "me", ttl=-1)
        assert await store.sweep() == 0  # still in the queue (not acked): never swept
        await store.ack(job.id, "me")
        assert await store.sweep() == 1
        assert await store.get(job.id) is None
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_9_with_jobs_queued_and_running_then_restart_runs_each_once(
    tmp_path: Path, test_site: TestSite
) -> None:
    """A real process, SIGKILLed with its Chromium: nothing accepted is lost, nothing charged twice."""
    port = free_port()
    config_path = tmp_path / "service.toml"
    config_path.write_text(SERVICE_TOML.format(root=tmp_path, port=port, site_port=test_site.port))
    state = SqliteStateStore(tmp_path / "state.sqlite3")
    _, key = await create_key(state, "jobs", "crash")
    await state.close()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with aiohttp.ClientSession() as http:

            async def job(job_id: str) -> dict[str, Any]:
                async with http.get(f"{base}/v1/jobs/{job_id}", headers=headers) as response:
                    assert response.status == 200
                    return dict(await response.json())

            processes.append(spawn_service(config_path, tmp_path / "service.log"))
            await _wait_healthy(http, base, processes[-1], tmp_path / "service.log")
            ids = []
            with site.held_back() as token:  # the jobs' page loads only once the process is dead
                for _ in range(6):
                    body = {"url": f"{test_site.url}/slow?gate={token}", "width": 320, "height": 240}
                    async with http.post(f"{base}/v1/jobs", json=body, headers=headers) as response:
                        assert response.status == 202
                        ids.append((await response.json())["id"])

                async def one_running() -> bool:
                    return any([(await job(job_id))["status"] == "running" for job_id in ids])

                assert await wait_for(one_running, 60)
                tree = kill_tree(processes[-1])  # kill -9: the service and its Chromium, no cleanup at all
                assert not await asyncio.to_thread(wait_gone, tree)
            with sqlite3.connect(tmp_path / "state.sqlite3") as db:
                left = [row[0] for row in db.execute("SELECT status FROM jobs")]
            assert "running" in left and "succeeded" not in left, left  # killed mid-capture, with a backlog

            processes.append(spawn_service(config_path, tmp_path / "service.log"))
            await _wait_healthy(http, base, processes[-1], tmp_path / "service.log")
            finished = [await poll_until_done(functools.partial(job, job_id), 120) for job_id in ids]
            assert [j["status"] for j in finished] == ["succeeded"] * 6
            for done in finished:
                async with http.get(done["result"]["url"]) as image:
                    assert image.status == 200
                    assert image_of(await image.read()).size == (320, 240)
            async with http.get(f"{base}/v1/usage", headers=headers) as usage:
                assert (await usage.json())["quota"]["used"] == 6  # charged once per job
            second = processes[-1]
            tree = [second.pid, *descendants(second.pid)]
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 60)
            assert not await asyncio.to_thread(wait_gone, tree), "Chromium outlived a graceful stop"
        assert reservations(tmp_path) == {"committed": 6}
    finally:
        for process in processes:
            if process.poll() is None:
                await asyncio.to_thread(wait_gone, kill_tree(process))


SERVICE_TOML = """
[server]
host = "127.0.0.1"
port = {port}
drain_seconds = 5.0
[browser]
pool_size = 2
[egress]
allow = ["127.0.0.1:{site_port}"]
[storage.local]
path = "{root}/captures"
[state.sqlite]
path = "{root}/state.sqlite3"
[jobs]
workers = 2
[plans.jobs]
requests_per_second = 100000.0
burst = 100000
monthly_captures = 1000
concurrency = 100
max_queued_jobs = 100
"""


async def _wait_healthy(http: aiohttp.ClientSession, base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async def ready() -> bool:
        assert process.poll() is None, f"the service exited:\n{_tail(log)}"
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/readyz") as response:
                return response.status == 200
        return False

    assert await wait_for(ready, 90), f"the service did not become ready:\n{_tail(log)}"


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def test_the_readme_verification_snippet_accepts_good_and_refuses_bad_signatures() -> None:
    secret, body, now = "whsec_test", b'{"id":"job_x"}', 1_800_000_000
    header = signature(secret, now, body)
    assert header == f"t={now},v1=" + hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify(secret, header, body, now=now + 10)
    assert not verify("whsec_other", header, body, now=now)
    assert not verify(secret, header, body + b" ", now=now)
    assert not verify(secret, header, body, now=now + 301)  # replayed too late
    assert not verify(secret, "v1=abc", body, now=now)
