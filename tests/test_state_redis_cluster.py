"""The service on a real three-primary Redis Cluster (``state.redis.cluster = true``).

The store, limiter, gate and job-queue contracts also run on the cluster (the
"cluster" params of test_state_contract.py and test_jobs_redis.py); here the
whole service runs on it: captures, a 429, the exact ledger and a job, plus
where the keys land.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from screenshot_service import config_loading
from screenshot_service.config import ConfigError
from screenshot_service.state.base import Reservation
from screenshot_service.state.errors import StateUnavailable
from screenshot_service.state.redis import RedisStateStore
from screenshot_service.state.redis_client import SOCKET_TIMEOUT
from tests.conftest import answered_by, image_of, wait_for
from tests.jobs_helpers import plan, settings_for, start_app

if TYPE_CHECKING:
    from screenshot_service.browser.pool import BrowserPool
    from tests.conftest import TestSite
    from tests.redis_cluster import RedisTestCluster

pytest_plugins = ["tests.redis_cluster"]

PERIOD = "2026-03"


def keys_per_node(cluster: RedisTestCluster) -> list[int]:
    return [int(subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True, text=True,
                               check=True, timeout=10).stdout) for port in cluster.ports]  # fmt: skip


def sockets_to(ports: list[int]) -> dict[str, int]:
    """This process's TCP sockets to one of ``ports`` by state (from /proc, not the client's bookkeeping)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile (listdir's own, for one)
            mine.add(os.readlink(f"/proc/self/fd/{fd}"))
    states: dict[str, int] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
                if remote_port in ports and f"socket:[{inode}]" in mine:
                    name = {"01": "established", "08": "close_wait"}.get(state, state)
                    states[name] = states.get(name, 0) + 1
    return states


async def test_ledgers_spread_over_the_primaries_and_run_out_leases_are_reclaimed(
    redis_cluster: RedisTestCluster,
) -> None:
    redis_cluster.flush()
    store = RedisStateStore(redis_cluster.url, cluster=True)
    try:
        key_ids = [f"key_{n:02d}" for n in range(12)]
        leased: list[Reservation] = []
        for key_id in key_ids:
            kept = (await store.reserve_credit(key_id, PERIOD, 5, 60)).reservation
            assert kept is not None and await store.commit_credit(kept)
            lapsing = (await store.reserve_credit(key_id, PERIOD, 5, 0.001)).reservation
            assert lapsing is not None
            leased.append(lapsing)
        # Busy keys spread over the primaries, not all on one node.
        assert sum(1 for count in keys_per_node(redis_cluster) if count) >= 2
        reclaimed = 0

        async def all_reclaimed() -> bool:  # once every short lease has run out, on each node's clock
            nonlocal reclaimed
            reclaimed += await store.reclaim_credits()
            return reclaimed == len(key_ids)

        assert await wait_for(all_reclaimed), f"reclaimed {reclaimed} of {len(key_ids)}"
        assert [await store.credits_used(key_id, PERIOD) for key_id in key_ids] == [1] * len(key_ids)
        assert not any([await store.commit_credit(r) for r in leased])  # a reclaimed lease cannot commit
    finally:
        await store.close()


async def test_captures_a_429_the_exact_ledger_and_a_job_on_a_cluster(
    aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool,
    redis_cluster: RedisTestCluster,
) -> None:  # fmt: skip
    redis_cluster.flush()
    settings = settings_for(
        tmp_path / "svc", test_site, plans={"tight": plan(requests_per_second=0.01, burst=1)},
        state={"backend": "redis", "redis": {"url": redis_cluster.url, "cluster": True}},
    )  # fmt: skip
    svc = await start_app(aiohttp_client, settings, test_site, shared_pool)

    async def usage(key: str) -> Any:
        response = await svc.client.get("/v1/usage", headers=svc.auth(key))
        assert response.status == 200, await response.text()
        return await response.json()

    # Sync captures, and failures that are refunded: the ledger counts the delivered ones only.
    for _ in range(2):
        params = {"url": test_site.url + "/paint", "width": "320", "height": "240", "response_type": "image"}
        shot = await svc.client.get("/v1/screenshot", params=params, headers=svc.auth())
        assert shot.status == 200, await shot.text()
        assert image_of(await shot.read()).size == (320, 240)
        failed = await svc.client.get("/v1/screenshot", params={"url": "http://nowhere.invalid/"}, headers=svc.auth())
        assert failed.status == 502, await failed.text()
    assert (await usage(svc.key))["quota"]["used"] == 2

    # A job, submitted and run to the end on the same cluster.
    job = await svc.submit_ok("/paint", width=320, height=240)
    done = await svc.wait_done(job["id"])
    assert done["status"] == "succeeded", done
    fetched = await svc.client.get("/" + done["result"]["url"].split("/", 3)[3])
    assert fetched.status == 200 and image_of(await fetched.read()).size == (320, 240)
    assert (await usage(svc.key))["quota"]["used"] == 3
    assert await svc.credits_used() == 3

    # The rate limit: a one-request bucket that takes 100 s to drain refuses the second request.
    _, tight = await svc.new_key("tight")
    assert (await usage(tight))["plan"] == "tight"
    refused = await svc.client.get("/v1/usage", headers=svc.auth(tight))
    assert refused.status == 429
    error = (await refused.json())["error"]
    assert error["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1


async def test_a_primary_down_is_a_fast_503_and_the_store_heals_when_it_is_back(
    redis_cluster: RedisTestCluster,
) -> None:
    redis_cluster.flush()
    store = RedisStateStore(redis_cluster.url, cluster=True)
    try:
        await store.ping()  # learns the slot map
        down = 2  # not the node in the URL
        key_id = next(f"key_{n}" for n in range(1000)
                      if store.client.get_node_from_key(store.names.quota(f"key_{n}", PERIOD)).port  # type: ignore[union-attr]
                      == redis_cluster.ports[down])  # fmt: skip
        assert (await store.reserve_credit(key_id, PERIOD, 5, 60)).reservation is not None
        assert sockets_to([redis_cluster.ports[down]]).get("established", 0) >= 1
        redis_cluster.kill(down)
        with pytest.raises(StateUnavailable):
            await answered_by(store.credits_used(key_id, PERIOD), SOCKET_TIMEOUT)
        redis_cluster.restart(down)  # empty: its data died with it

        async def healed() -> bool:
            try:
                return (await store.reserve_credit(key_id, PERIOD, 5, 60)).reservation is not None
            except StateUnavailable:
                return False

        assert await wait_for(healed, 30), "the store did not recover once the primary was back"
        assert await store.credits_used(key_id, PERIOD) == 1
        # The connections the dead node left behind were closed, not kept in the pool half-open.
        assert "close_wait" not in sockets_to(redis_cluster.ports)
    finally:
        await store.close()


def test_the_cluster_key_comes_from_the_environment_and_a_database_other_than_0_stops_start_up() -> None:
    env = {"SCREENSHOT_STATE_BACKEND": "redis", "SCREENSHOT_STATE_REDIS_CLUSTER": "true"}
    settings = config_loading.load(environ={**env, "SCREENSHOT_STATE_REDIS_URL": "redis://10.0.0.1:6379"})
    assert settings.state.redis.cluster is True
    with pytest.raises(ConfigError) as refused:
        config_loading.load(environ={**env, "SCREENSHOT_STATE_REDIS_URL": "redis://:hunter2@10.0.0.1:6379/3"})
    message = str(refused.value)
    assert "state.redis.url names database '3'" in message and "hunter2" not in message
    assert config_loading.load(environ={"SCREENSHOT_STATE_REDIS_URL": "redis://10.0.0.1/3"}).state.redis.cluster is False
