"""Job leases on one SQLite file shared by two runners (a restart where old and new overlap).

A job leased by a live runner is never taken by another, not even by a process
that opens the file right then; it changes hands once the lease has run out, or
at once when the owner is provably dead (a process of this host that is gone).
A runner that stops while its claim is in the store's hands gives that job back.
Real parts: the shared Chromium pool, the local test site, real processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.jobs.models import parse_iso
from screenshot_service.jobs.runner import JobRunner
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.limits.ledger import Ledger
from screenshot_service.state.sqlite import SqliteStateStore
from tests import site
from tests.conftest import wait_for
from tests.jobs_helpers import JobsApp, settings_for, start_app
from tests.test_jobs_redis import a_job

if TYPE_CHECKING:
    from tests.conftest import TestSite


def _row(db_path: Path, job_id: str) -> dict[str, Any]:
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return dict(row)


def _reservations(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM quota_reservations GROUP BY state").fetchall())


async def _instance(aiohttp_client: Any, root: Path, site: TestSite, pool: BrowserPool, *, lease: float,
                    key: Any = None) -> JobsApp:  # fmt: skip
    settings = settings_for(root, site, jobs={"workers": 1})
    return await start_app(aiohttp_client, settings, site, pool, key=key, tuning={"lease_seconds": lease})


async def test_a_second_process_on_the_file_does_not_take_a_live_heartbeating_lease(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool
) -> None:
    # Generous lease (renewed every 2 s): only a steal, never a slow machine, can hand the job over.
    a = await _instance(aiohttp_client, tmp_path / "shared", test_site, shared_pool, lease=6.0)
    slow_before = test_site.log.count("/slow")
    db_path = tmp_path / "shared" / "state.sqlite3"
    with site.held_back() as token:  # A's capture lasts until A has renewed its lease with B running
        created = await a.submit_ok(f"/slow?gate={token}", width=320, height=240)
        assert await wait_for(lambda: _row(db_path, created["id"])["status"] == "running", 30)
        owner_a, leased_until = _row(db_path, created["id"])["owner"], float(_row(db_path, created["id"])["lease_until"])

        # B starts on the same file while A is capturing (the overlap of a rolling restart).
        b = await _instance(aiohttp_client, tmp_path / "shared", test_site, shared_pool, lease=6.0,
                            key=(a.record, a.key))  # fmt: skip
        assert await wait_for(lambda: float(_row(db_path, created["id"])["lease_until"]) > leased_until, 30)
    done = await a.wait_done(created["id"])

    assert done["status"] == "succeeded"
    row = _row(db_path, created["id"])
    assert row["runs"] == 1, "another runner claimed the job while its lease was live"
    assert test_site.log.count("/slow") - slow_before == 1  # captured once, by A
    assert row["owner"] in (None, owner_a)
    assert await a.credits_used() == 1 and _reservations(db_path) == {"committed": 1}
    # B works: it runs what is queued once nobody holds it.
    second = await b.submit_ok("/paint", width=320, height=240)
    assert (await b.wait_done(second["id"]))["status"] == "succeeded"


async def test_a_lease_left_by_a_stalled_runner_is_taken_only_once_it_has_run_out(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool
) -> None:
    root = tmp_path / "svc"
    db_path = root / "state.sqlite3"
    submitter = await start_app(aiohttp_client, settings_for(root, test_site, jobs={"workers": 0}), test_site,
                                shared_pool)  # fmt: skip
    created = await submitter.submit_ok("/paint", width=320, height=240)
    # A runner of this (live) process claims the job, then never renews: it hung.
    ghost = SqliteJobStore(db_path)
    try:
        claimed = await ghost.claim(f"{socket.gethostname()}:{os.getpid()}:ghost", 2.0)
        assert claimed is not None and claimed.id == created["id"]
        lease_until = float(_row(db_path, claimed.id)["lease_until"])

        # B opens the file while that lease is live, and takes the job only once it has run out.
        b = await _instance(aiohttp_client, root, test_site, shared_pool, lease=6.0,
                            key=(submitter.record, submitter.key))  # fmt: skip
        done = await b.wait_done(claimed.id)
    finally:
        await ghost.close()
    assert done["status"] == "succeeded"
    row = _row(db_path, claimed.id)
    started = parse_iso(row["started_at"])  # when B claimed it
    assert started is not None and started.timestamp() >= lease_until - 0.001, "taken while the lease was live"
    assert row["runs"] == 2  # the hung run counts
    assert await b.credits_used() == 1 and _reservations(db_path) == {"committed": 1}


async def test_at_start_up_only_a_dead_process_leases_are_dropped(tmp_path: Path) -> None:
    db_path = tmp_path / "state.sqlite3"
    host = socket.gethostname()
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    dead_pid = gone.pid  # exited and reaped
    living = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(600)")
    try:
        first = SqliteJobStore(db_path)
        dead_job, live_job, other_host_job = a_job(), a_job(), a_job()
        for job in (dead_job, live_job, other_host_job):
            await first.create(job, max_active=10, ttl=3600)
        for owner in (f"{host}:{dead_pid}:old", f"{host}:{living.pid}:old", f"elsewhere.example:{dead_pid}:old"):
            assert await first.claim(owner, 3600) is not None
        await first.close()

        second = SqliteJobStore(db_path)  # a new process starting on the file
        try:
            assert _row(db_path, dead_job.id)["owner"] is None  # its owner is provably dead
            assert _row(db_path, dead_job.id)["status"] == "queued"
            assert _row(db_path, live_job.id)["owner"] == f"{host}:{living.pid}:old"
            assert _row(db_path, other_host_job.id)["owner"] == f"elsewhere.example:{dead_pid}:old"
            taken = await second.claim("new", 30)
            assert taken is not None and taken.id == dead_job.id
            assert await second.claim("new", 30) is None  # live leases (and unknown hosts') stay theirs
            assert await second.renew(live_job.id, f"{host}:{living.pid}:old", 3600)
        finally:
            await second.close()
    finally:
        living.kill()
        await living.wait()


async def test_a_claim_in_flight_when_the_runner_stops_lands_and_its_job_goes_back(tmp_path: Path) -> None:
    db_path = tmp_path / "state.sqlite3"
    store = SqliteJobStore(db_path)
    state = SqliteStateStore(db_path)
    job = a_job()
    await store.create(job, max_active=10, ttl=3600)
    # Another connection holds the write lock: the runner's claim waits in the store's worker thread.
    locker = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
    # No capture and no webhook is ever reached: the job goes back before its capture starts.
    runner = JobRunner(store, state, Ledger(state), cast(Any, None), cast(Any, None), workers=1,
                       retention_seconds=3600, poll_interval=0.05)  # fmt: skip
    try:
        await asyncio.to_thread(locker.execute, "BEGIN IMMEDIATE")
        runner.start()
        assert await wait_for(store.file.lock.locked, 30), "the runner never tried to claim"
        runner.begin_stop(0)  # the app starts draining while the claim is in flight
        await asyncio.to_thread(locker.execute, "ROLLBACK")  # the claim lands: the job is the runner's
        await runner.stop(0)
        await store.get(job.id)  # after anything still running on the store's connection
        row = _row(db_path, job.id)
        assert (row["status"], row["owner"], row["runs"]) == ("queued", None, 0), "the claimed job was not given back"
    finally:
        locker.close()
        await store.close()
        await state.close()
