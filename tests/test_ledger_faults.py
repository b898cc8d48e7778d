"""The exact ledger under faults: credits used equal the captures delivered, on SQLite and on Redis.

Faults go into real parts, at the steps of the capture pipeline
(``CapturePipeline.faults``: admitting, reserved, captured, committed):
redis-server frozen (SIGSTOP) or killed (SIGKILL; its append-only file keeps
the data, as production's ``appendonly yes`` does), Chromium killed, the client
hanging up, the deadline passing, the whole process killed with jobs queued.
After each fault clears, ``/v1/usage`` and the store itself agree with what
was answered 200 (or succeeded as a job), and no reservation is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient

from screenshot_service.app import create_app
from screenshot_service.appkeys import LEDGER, PIPELINE, STATE
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.limits.keys import create_key
from screenshot_service.limits.quota import current_period
from screenshot_service.state.sqlite import SqliteStateStore
from tests.conftest import base_settings, kill_process_group, wait_for
from tests.jobs_helpers import kill_tree, poll_until_done, spawn_service, wait_gone
from tests.redis_server import RedisTestServer, free_port

if TYPE_CHECKING:
    from tests.conftest import TestSite

DEADLINE = 8.0  # capture.deadline_seconds here: a reservation's lease is its time left + 5 s
# The killed process's deadline: its capture is in flight within a second, and the restart
# waits out that dead capture's lease (deadline + 5 s) before the reclaim refunds it.
KILLED_DEADLINE = 5.0
SETTLED_WITHIN = 60.0  # a refund retried, or a lease run out and reclaimed, lands well within this
STORES = ["sqlite", "redis"]


@dataclass
class Instance:
    """One app on a shared store, its key, and ways to read the ledger back."""

    client: TestClient
    key: str
    key_id: str
    store: str
    root: Path
    redis: RedisTestServer | None
    site_url: str

    @property
    def pipeline(self) -> Any:
        return self.client.app[PIPELINE]

    async def shot(self, path: str = "/paint", **params: Any) -> tuple[int, dict[str, Any]]:
        query = {"url": f"{self.site_url}{path}", "api_key": self.key,
                 **{k: str(v) for k, v in params.items()}}  # fmt: skip
        async with self.client.get("/v1/screenshot", params=query) as response:
            return response.status, await response.json()

    async def used(self) -> int:
        async with self.client.get("/v1/usage", headers={"Authorization": f"Bearer {self.key}"}) as response:
            assert response.status == 200, await response.text()
            return int((await response.json())["quota"]["used"])

    def reservations(self) -> dict[str, int]:
        return reservations_in(self.store, self.root, self.redis)

    async def settled(self, delivered: int) -> bool:
        """Wait until the ledger is at rest: no refund pending, no reservation open, used == delivered."""

        async def at_rest() -> bool:
            states = await asyncio.to_thread(self.reservations)
            return (self.client.app[LEDGER].pending == 0 and states.get("reserved", 0) == 0
                    and states.get("committed", 0) == delivered and await self.used() == delivered)  # fmt: skip

        return await wait_for(at_rest, SETTLED_WITHIN)


def reservations_in(store: str, root: Path, redis: RedisTestServer | None) -> dict[str, int]:
    """Reservations by state, read from the store itself (not through the service)."""
    counts: dict[str, int] = {}
    if store == "sqlite":
        with contextlib.closing(sqlite3.connect(root / "state.sqlite3")) as db:
            return dict(db.execute("SELECT state, COUNT(*) FROM quota_reservations GROUP BY state").fetchall())
    assert redis is not None
    client = sync_redis.Redis.from_url(redis.url, decode_responses=True)
    try:
        for name in client.scan_iter("screenshot:res:*"):
            state = client.hget(name, "s")
            counts[str(state)] = counts.get(str(state), 0) + 1
    finally:
        client.close()
    return counts


MakeInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def make_instance(
    request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool
) -> MakeInstance:
    """make_instance(store, pool=None, key=None) -> an app on this test's one SQLite file or Redis."""
    redis: RedisTestServer | None = None

    async def make(store: str, *, pool: BrowserPool | None = None, key: tuple[str, str] | None = None) -> Instance:
        nonlocal redis
        state: dict[str, Any] = {"sqlite": {"path": str(tmp_path / "state.sqlite3")}}
        if store == "redis":
            redis = redis or request.getfixturevalue("durable_redis")
            state = {"backend": "redis", "redis": {"url": redis.url}}
        settings = base_settings(tmp_path, test_site.port, state=state, capture={"deadline_seconds": DEADLINE})
        app = create_app(settings, pool=pool or shared_pool)
        client = await aiohttp_client(app)
        if key is None:
            record, raw = await create_key(app[STATE], "unlimited", "ledger")
            key = (record.id, raw)
        return Instance(client=client, key=key[1], key_id=key[0], store=store, root=tmp_path, redis=redis,
                        site_url=test_site.url)

    return make


async def _block_forever() -> None:
    await asyncio.Event().wait()  # until the deadline cancels it


# -- the state store stalls or dies at each step (Redis) -------------------------------------------
# Frozen or killed at the step, brought back once the answer is in: what may the answer be?
STORE_FAULTS = {"admitting": 503, "reserved": 503, "captured": 503, "committed": 200}


@pytest.mark.parametrize("point", list(STORE_FAULTS))
@pytest.mark.parametrize("fault", ["frozen", "killed"])
async def test_redis_fault_at_each_step_leaves_the_ledger_exact(
    make_instance: MakeInstance, point: str, fault: str
) -> None:
    svc = await make_instance("redis")
    redis = svc.redis
    assert redis is not None
    assert (await svc.shot())[0] == 200
    svc.pipeline.faults.at(point, _async(redis.freeze if fault == "frozen" else redis.stop))
    try:
        status, body = await svc.shot()
        waiting = await _metric(svc.client, "ledger_refunds_pending")  # /metrics needs no state store
    finally:
        svc.pipeline.faults.at(point, None)
        redis.thaw() if fault == "frozen" else redis.start()
    assert status == STORE_FAULTS[point], body
    assert waiting == (1 if point in ("reserved", "captured") else 0)  # a refund waits for the store
    if status != 200:
        assert body["error"]["code"] == "state_unavailable"
    assert await svc.settled(delivered=1 + (status == 200)), (await svc.used(), svc.reservations())
    assert (await svc.shot())[0] == 200  # and it serves on
    assert await svc.settled(delivered=2 + (status == 200))


def _async(action: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def hook() -> None:
        action()

    return hook


# -- the deadline, the client, Chromium ------------------------------------------------------------
@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("point", ["captured", "committed"])
async def test_a_deadline_passing_at_settlement_is_not_charged(
    make_instance: MakeInstance, store: str, point: str
) -> None:
    svc = await make_instance(store)
    svc.pipeline.faults.at(point, _block_forever)
    status, body = await svc.shot(timeout=2)
    svc.pipeline.faults.at(point, None)
    assert status == 504 and body["error"]["code"] == "capture_timeout", body
    assert await svc.settled(delivered=0), (await svc.used(), svc.reservations())
    assert (await svc.shot())[0] == 200
    assert await svc.settled(delivered=1)


@pytest.mark.parametrize("store", STORES)
async def test_a_client_that_hangs_up_mid_capture_is_not_charged(
    make_instance: MakeInstance, store: str, test_site: TestSite
) -> None:
    svc = await make_instance(store)
    seen = test_site.log.count("/slow")
    query = {"url": test_site.url + "/slow?s=2", "api_key": svc.key}
    async with aiohttp.ClientSession() as http:
        base = str(svc.client.make_url("/v1/screenshot"))
        call = asyncio.create_task(http.get(base, params=query))
        assert await wait_for(lambda: test_site.log.count("/slow") > seen, 20)  # the browser is loading it...
        assert await svc.used() == 1  # ...on a reserved credit
        call.cancel()  # the client hangs up: its capture is cancelled, or finds nobody to answer
        with contextlib.suppress(asyncio.CancelledError):
            await call
    assert await svc.settled(delivered=0), (await svc.used(), svc.reservations())
    assert (await svc.shot())[0] == 200  # the slot came back
    assert await svc.settled(delivered=1)


@pytest.mark.parametrize("store", STORES)
async def test_a_chromium_crash_mid_capture_is_not_charged(
    make_instance: MakeInstance, make_pool: Callable[..., Awaitable[BrowserPool]], store: str
) -> None:
    pool = await make_pool(pool_size=1, max_queue=4)
    svc = await make_instance(store, pool=pool)

    async def kill_chromium() -> None:
        for pid in pool.chromium_pids():
            kill_process_group(pid)

    svc.pipeline.faults.at("reserved", kill_chromium)
    status, body = await svc.shot()
    svc.pipeline.faults.at("reserved", None)
    assert status == 503 and body["error"]["code"] == "browser_unavailable", body
    assert await wait_for(lambda: pool.ready, 60)
    assert (await svc.shot())[0] == 200
    assert await svc.settled(delivered=1), (await svc.used(), svc.reservations())


# -- two instances on one store, with Redis frozen twice along the way -----------------------------
@pytest.mark.parametrize("store", STORES)
async def test_two_instances_on_one_store_charge_exactly_what_they_deliver(
    make_instance: MakeInstance, store: str
) -> None:
    a = await make_instance(store)
    b = await make_instance(store, key=(a.key_id, a.key))
    freezes = {"requests": 0, "frozen": False}

    async def freeze_now_and_then() -> None:  # the 8th and 24th capture to finish on `a` freeze Redis
        freezes["requests"] += 1
        if a.redis is not None and freezes["requests"] in (8, 24):
            a.redis.freeze()
            freezes["frozen"] = True

    a.pipeline.faults.at("captured", freeze_now_and_then)
    todo = list(range(40))
    statuses: list[int] = []

    async def client() -> None:
        while todo:
            n = todo.pop()
            status, _ = await (a if n % 2 else b).shot(f"/paint?n={n}")
            statuses.append(status)
            if freezes["frozen"] and a.redis is not None:  # an answer came back: the stall is over
                a.redis.thaw()
                freezes["frozen"] = False

    try:
        await asyncio.gather(*(client() for _ in range(4)))
    finally:
        if a.redis is not None:
            a.redis.thaw()
    delivered = statuses.count(200)
    assert set(statuses) <= {200, 503} and len(statuses) == 40
    if store == "redis":
        assert delivered < 40  # the stalls did fail some captures...
    else:
        assert delivered == 40
    assert await a.settled(delivered), (await a.used(), a.reservations())  # ...and none of them was charged
    assert await b.settled(delivered) and b.client.app[LEDGER].pending == 0


# -- a process killed mid-capture, with jobs queued --------------------------------------------------
SERVICE_TOML = """
[server]
host = "127.0.0.1"
port = {port}
drain_seconds = 5.0
[browser]
pool_size = 2
[capture]
deadline_seconds = {deadline}
[egress]
allow = ["127.0.0.1:{site_port}"]
[storage.local]
path = "{root}/captures"
[state]
backend = "{store}"
[state.sqlite]
path = "{root}/state.sqlite3"
[state.redis]
url = "{redis_url}"
[jobs]
workers = 2
[plans.ledger]
requests_per_second = 100000.0
burst = 100000
monthly_captures = 1000
concurrency = 100
max_queued_jobs = 100
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("store", STORES)
async def test_a_process_killed_mid_capture_with_jobs_queued_charges_each_job_once(
    request: pytest.FixtureRequest, tmp_path: Path, test_site: TestSite, store: str
) -> None:
    redis: RedisTestServer | None = request.getfixturevalue("durable_redis") if store == "redis" else None
    port = free_port()
    config_path = tmp_path / "service.toml"
    config_path.write_text(SERVICE_TOML.format(
        port=port, deadline=KILLED_DEADLINE, site_port=test_site.port, root=tmp_path, store=store,
        redis_url=redis.url if redis else "redis://127.0.0.1:1/0"))  # fmt: skip
    key = await _key_on(store, tmp_path, redis)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    processes: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "service.log"
    try:
        async with aiohttp.ClientSession() as http:

            async def job(job_id: str) -> dict[str, Any]:
                async with http.get(f"{base}/v1/jobs/{job_id}", headers=headers) as response:
                    assert response.status == 200
                    return dict(await response.json())

            async def used() -> int:
                async with http.get(f"{base}/v1/usage", headers=headers) as response:
                    return int((await response.json())["quota"]["used"])

            processes.append(spawn_service(config_path, log))
            await _wait_ready(http, base, processes[-1], log)
            ids = []
            for _ in range(4):
                body = {"url": test_site.url + "/paint", "delay": 1500, "width": 320, "height": 240}
                async with http.post(f"{base}/v1/jobs", json=body, headers=headers) as response:
                    assert response.status == 202
                    ids.append((await response.json())["id"])
            seen = test_site.log.count("/slow")
            sync = asyncio.create_task(http.get(f"{base}/v1/screenshot", params={"url": test_site.url + "/slow?s=20"},
                                                headers=headers))  # fmt: skip
            assert await wait_for(lambda: test_site.log.count("/slow") > seen, 30)  # a sync capture in flight
            assert await wait_for(lambda: _any_running(job, ids), 30)  # and a job
            tree = kill_tree(processes[-1])  # kill -9: the service and its Chromium, no cleanup at all
            assert not await asyncio.to_thread(wait_gone, tree)
            with contextlib.suppress(aiohttp.ClientError):
                await sync
            assert reservations_in(store, tmp_path, redis).get("reserved", 0) == 5  # four jobs, one sync

            processes.append(spawn_service(config_path, log))
            await _wait_ready(http, base, processes[-1], log)
            finished = [await poll_until_done(functools.partial(job, job_id), 120) for job_id in ids]
            assert [j["status"] for j in finished] == ["succeeded"] * 4

            async def exact() -> bool:  # the dead sync capture's lease runs out and is reclaimed
                return reservations_in(store, tmp_path, redis) == {"committed": 4, "refunded": 1}

            assert await wait_for(exact, SETTLED_WITHIN), reservations_in(store, tmp_path, redis)
            assert await used() == 4
    finally:
        for process in processes:
            if process.poll() is None:
                await asyncio.to_thread(wait_gone, kill_tree(process))


async def _key_on(store: str, root: Path, redis: RedisTestServer | None) -> str:
    if store == "redis":
        from screenshot_service.state.redis import RedisStateStore

        assert redis is not None
        state: Any = RedisStateStore(redis.url)
    else:
        state = SqliteStateStore(root / "state.sqlite3")
    try:
        _, raw = await create_key(state, "ledger", "killed")
    finally:
        await state.close()
    return raw


async def _any_running(job: Callable[[str], Awaitable[dict[str, Any]]], ids: list[str]) -> bool:
    return any([(await job(job_id))["status"] == "running" for job_id in ids])


async def _wait_ready(http: aiohttp.ClientSession, base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async def ready() -> bool:
        assert process.poll() is None, f"the service exited:\n{_tail(log)}"
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/readyz") as response:
                return response.status == 200
        return False

    assert await wait_for(ready, 90), _tail(log)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


# -- metrics ---------------------------------------------------------------------------------------
async def test_settlements_are_counted_in_metrics(make_instance: MakeInstance) -> None:
    svc = await make_instance("sqlite")
    before = await _settlements(svc.client)
    assert (await svc.shot())[0] == 200
    svc.pipeline.faults.at("captured", _block_forever)
    assert (await svc.shot(timeout=1))[0] == 504
    svc.pipeline.faults.at("captured", None)
    # An owner that died holding a credit: a reservation nobody will settle, with a short lease.
    await svc.client.app[STATE].reserve_credit(svc.key_id, current_period().name, 10**9, 0.2)

    async def counted() -> bool:
        now = await _settlements(svc.client)
        return all(now.get(k, 0) - before.get(k, 0) == 1 for k in ("committed", "refunded", "reclaimed"))

    assert await wait_for(counted, SETTLED_WITHIN), await _settlements(svc.client)
    assert await svc.settled(delivered=1)


async def _metric(client: TestClient, name: str) -> float:
    async with client.get("/metrics") as response:
        text = await response.text()
    found = re.search(rf"^\w*_{name} (\S+)$", text, re.M)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


async def _settlements(client: TestClient) -> dict[str, float]:
    async with client.get("/metrics") as response:
        text = await response.text()
    found = re.findall(r'^\w*credit_settlements_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}
