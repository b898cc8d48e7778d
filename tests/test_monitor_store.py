"""The monitor store's contract on every backend it runs on: an SQLite file shared by two
connections, one redis-server, and a real three-primary Redis Cluster (each script's keys share
one hash tag).  Two stores on the same data stand for two instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.monitors.models import MAX_RUNS_KEPT, Monitor, new_monitor_id
from screenshot_service.monitors.redis_store import RedisMonitorStore
from screenshot_service.monitors.sqlite_store import SqliteMonitorStore
from screenshot_service.monitors.store import MonitorStore

pytest_plugins = ["tests.redis_cluster"]


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[MonitorStore, MonitorStore]]:
    opener: Callable[[], MonitorStore]
    if request.param == "sqlite":
        opener = lambda: SqliteMonitorStore(tmp_path / "state.sqlite3")  # noqa: E731
    else:
        server: Any = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
        server.flush()
        opener = lambda: RedisMonitorStore(server.url, cluster=request.param == "cluster")  # noqa: E731
    stores = (opener(), opener())
    yield stores
    for store in stores:
        await store.close()


def a_monitor(key_id: str = "key_a", *, due: float | None = None, interval: int = 60) -> Monitor:
    now = time.time()
    return Monitor(id=new_monitor_id(), key_id=key_id, options={"url": "http://example.com/"}, interval=interval,
                   threshold=0.01, webhook_url="http://hooks.example/", base_url="http://svc", created_at=now,
                   next_run_at=now if due is None else due)  # fmt: skip


async def test_each_due_slot_is_claimed_once_and_a_missed_schedule_once(two_stores: Any) -> None:
    one, two = two_stores
    missed = a_monitor(due=time.time() - 250, interval=100)  # three slots ago
    assert await one.create(missed, max_monitors=5) is None
    claims = await asyncio.gather(*(store.claim() for store in (one, two, one, two)))
    taken = [claim for claim in claims if claim.monitor is not None]
    assert len(taken) == 1 and taken[0].scheduled_at == pytest.approx(missed.next_run_at, abs=0.002)
    # The slots missed while nothing ran are skipped: the next one is in the future, on the schedule.
    assert taken[0].monitor.next_run_at == pytest.approx(missed.next_run_at + 300, abs=0.002)
    waiting = [claim for claim in claims if claim.monitor is None]
    assert all(claim.wait is not None and 40 < claim.wait <= 50.1 for claim in waiting), waiting
    stored = await two.get(missed.id)
    assert stored is not None and stored.next_run_at == pytest.approx(missed.next_run_at + 300, abs=0.002)


async def test_the_cap_runs_and_delete(two_stores: Any) -> None:
    one, two = two_stores
    first, second = a_monitor(), a_monitor()
    assert await asyncio.gather(one.create(first, max_monitors=1), two.create(second, max_monitors=1)) in (
        [None, 1], [1, None])  # two instances racing for the last place: one gets it
    kept = first if await one.get(first.id) is not None else second
    assert [m.id for m in await two.of_key("key_a")] == [kept.id] and await one.of_key("key_b") == []
    for n in range(MAX_RUNS_KEPT + 3):
        run = {"at": str(n), "result": {"id": f"cap_{n}"}}
        recorded = await one.record_run(kept.id, run, baseline=f"cap_{n}" if n % 2 else None, changed=n == 5)
        assert recorded is not None and recorded.last_run == run
    shown = await two.get(kept.id)
    assert shown is not None and shown.baseline == f"cap_{MAX_RUNS_KEPT + 1}" and shown.last_change == {
        "at": "5", "result": {"id": "cap_5"}}
    runs = await two.runs(kept.id)
    assert [run["at"] for run in runs] == [str(n) for n in range(MAX_RUNS_KEPT + 2, 2, -1)]  # newest first, 50
    assert await two.delete(kept.id, "key_b") is None  # another key's: untouched
    assert (await one.delete(kept.id, "key_a")) is not None and await one.get(kept.id) is None
    nothing = await two.claim()
    assert await two.runs(kept.id) == [] and nothing.monitor is None and nothing.wait is None  # none left
    assert await one.record_run(kept.id, {"at": "late"}, baseline=None, changed=False) is None
    assert await one.create(a_monitor(), max_monitors=1) is None  # its place is free again
