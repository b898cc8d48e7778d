"""Monitors (SPEC §4): observed through their webhook receiver, GET and /v1/usage, with real
Chromium, the real test site (a page whose colour the test changes), SQLite and redis-server."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.client import BlockingScreenshotClient, ScreenshotClient, ScreenshotError
from screenshot_service.jobs.install import install_jobs
from screenshot_service.jobs.webhooks import SIGNATURE_HEADER, verify
from screenshot_service.limits.keys import create_key
from screenshot_service.monitors.install import install_monitors
from screenshot_service.monitors.sqlite_store import SqliteMonitorStore
from tests.conftest import wait_for
from tests.jobs_helpers import FAST, JobsApp, plan, settings_for, webhook_receiver
from tests.scene_site import SCENES, Scene

MONITOR_PLAN = plan(max_monitors=2)
# 200x200 of the 1280x800 viewport change between the two: a ratio of about 0.04.
RED = Scene(box=(100, 100, 200, 200), box_colour=(255, 0, 0))
BLUE = Scene(box=(100, 100, 200, 200), box_colour=(0, 0, 255))


@pytest.fixture
def scene() -> Iterator[str]:
    name = uuid.uuid4().hex  # its own path: the site's hit counts are per test
    SCENES[name] = Scene(blank=True)
    yield name
    SCENES.pop(name, None)


async def start(aiohttp_client: Any, settings: Any, site: Any, pool: Any, *, key: Any = None,
                state: Any = None) -> JobsApp:  # fmt: skip
    from screenshot_service.app import create_app
    from screenshot_service.appkeys import STATE

    app = create_app(settings, pool=pool, state=state)
    install_jobs(app, **FAST)
    install_monitors(app, poll_interval=0.05)
    client = await aiohttp_client(app)
    record, raw = key or await create_key(app[STATE], "jobs", "test")
    return JobsApp(client=client, key=raw, record=record, settings=settings, site=site)


def monitor_settings(root: Path, site: Any, *, quota: int = 10**9, plan_extra: dict[str, Any] | None = None,
                     **sections: Any) -> Any:  # fmt: skip
    return settings_for(root, site, plans={"jobs": {**MONITOR_PLAN, "monthly_captures": quota, **(plan_extra or {})}},
                        monitors={"min_interval_seconds": 1, **sections.pop("monitors", {})}, **sections)


async def create(app: JobsApp, body: dict[str, Any], key: str | None = None) -> Any:
    return await app.client.post("/v1/monitors", json=body, headers=app.auth(key))


async def monitor(app: JobsApp, monitor_id: str) -> dict[str, Any]:
    response = await app.client.get(f"/v1/monitors/{monitor_id}", headers=app.auth())
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def runs(app: JobsApp, monitor_id: str) -> list[dict[str, Any]]:
    return list((await monitor(app, monitor_id))["runs"])


async def test_create_validates_every_field_and_caps_monitors_per_plan(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any
) -> None:
    settings = monitor_settings(tmp_path, test_site, monitors={"min_interval_seconds": 60, "workers": 0})
    app = await start(aiohttp_client, settings, test_site, shared_pool)
    page = f"{test_site.url}/paint"
    hook = f"{test_site.url}/hook"  # allowed through egress; never called: no run happens here
    good = {"url": page, "interval": 60, "webhook_url": hook}
    cases = [
        ({"url": page, "webhook_url": hook}, "interval"),
        ({**good, "interval": 59}, "interval"),
        ({**good, "interval": 60.5}, "interval"),
        ({**good, "interval": True}, "interval"),
        ({**good, "threshold": 1.5}, "threshold"),
        ({**good, "threshold": "a"}, "threshold"),
        ({**good, "compare_to": "previous"}, "compare_to"),
        ({**good, "format": "pdf"}, "format"),
        ({**good, "format": "markdown"}, "format"),
        ({**good, "cache": True}, "cache"),
        ({"url": page, "interval": 60}, "webhook_url"),
        ({**good, "width": 5}, "width"),
        ({**good, "widht": 500}, "widht"),
        ({**good, "name": 5}, "name"),
        ({"interval": 60, "webhook_url": hook}, "url"),
    ]
    for body, field in cases:
        response = await create(app, body)
        error = (await response.json())["error"]
        assert response.status == 400 and error["code"] == "invalid_parameter", (body, error)
        assert field in error["details"]["fields"], (body, error)
    blocked = await create(app, {**good, "webhook_url": "http://10.1.2.3/hook"})
    assert blocked.status == 400 and (await blocked.json())["error"]["code"] == "blocked_target"

    secret = {"headers": {"X-Token": "hunter2"}, "cookies": [{"name": "sid", "value": "s3cr3t"}]}
    first = await create(app, {**good, "name": "home", "threshold": 0.01, "width": 800, **secret})
    assert first.status == 201, await first.text()
    body = await first.json()
    assert body["id"].startswith("mon_") and first.headers["Location"] == body["status_url"]
    assert (body["name"], body["url"], body["interval"], body["threshold"]) == ("home", page, 60, 0.01)
    assert body["last_run"] is None and body["last_change"] is None and body["next_run_at"]
    assert body["options"] == {"width": 800} and "hunter2" not in await first.text()
    assert "s3cr3t" not in await first.text()
    assert (await create(app, good)).status == 201
    full = await create(app, good)
    error = (await full.json())["error"]
    assert full.status == 422 and error["code"] == "monitor_limit_reached" and error["details"]["max_monitors"] == 2

    listed = await (await app.client.get("/v1/monitors", headers=app.auth())).json()
    assert [m["id"] for m in listed["monitors"]][:1] == [body["id"]] and len(listed["monitors"]) == 2
    shown = await monitor(app, body["id"])
    assert shown["runs"] == [] and "hunter2" not in json.dumps(shown)

    _, other = await app.new_key()
    assert (await app.client.get(f"/v1/monitors/{body['id']}", headers=app.auth(other))).status == 404
    assert (await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth(other))).status == 404
    assert (await (await app.client.get("/v1/monitors", headers=app.auth(other))).json())["monitors"] == []

    deleted = await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth())
    assert deleted.status == 200 and (await deleted.json())["id"] == body["id"]
    assert (await app.client.get(f"/v1/monitors/{body['id']}", headers=app.auth())).status == 404
    assert (await app.client.delete(f"/v1/monitors/{body['id']}", headers=app.auth())).status == 404
    assert (await create(app, good)).status == 201  # its place is free again


def hook_settings(root: Path, site: Any, receiver: Any, **sections: Any) -> Any:
    return monitor_settings(root, site, egress={"allow": [f"127.0.0.1:{site.port}", f"127.0.0.1:{receiver.port}"]},
                            **sections)


def warning_codes(run: dict[str, Any]) -> set[str]:
    return {w["code"] for w in (run["result"] or {}).get("warnings", [])}


async def test_blank_runs_are_no_baseline_the_first_good_run_is_and_a_change_notifies_once_signed(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str
) -> None:
    async with webhook_receiver() as receiver:
        app = await start(aiohttp_client, hook_settings(tmp_path, test_site, receiver), test_site, shared_pool)
        created = await create(app, {"url": f"{test_site.url}/monitored/{scene}", "interval": 1, "threshold": 0.01,
                                     "webhook_url": receiver.url, "name": "scene"})  # fmt: skip
        assert created.status == 201, await created.text()
        monitor_id = (await created.json())["id"]

        async def newest() -> dict[str, Any] | None:
            found = await runs(app, monitor_id)
            return found[0] if found else None

        async def previous_id(run: dict[str, Any]) -> str:
            found = await runs(app, monitor_id)
            return str(found[found.index(run) + 1]["result"]["id"])

        async def a_run_after(count: int, check: Any) -> dict[str, Any]:
            """Wait for a run newer than the first ``count`` that meets ``check``."""
            seen: list[dict[str, Any]] = []

            async def arrived() -> bool:
                found = await runs(app, monitor_id)
                seen[:] = [run for run in found[: max(0, len(found) - count)] if check(run)]
                return bool(seen)

            assert await wait_for(arrived, 60), await runs(app, monitor_id)
            return seen[-1]

        blank = await a_run_after(0, lambda run: run["status"] == "succeeded")
        assert "blank_capture" in warning_codes(blank) and "diff" not in blank["result"]

        SCENES[scene] = RED
        count = len(await runs(app, monitor_id))
        # The first run of the red page had nothing to compare with: the blank one is no baseline.
        first_red = await a_run_after(count, lambda run: not warning_codes(run) - {"no_baseline"})
        assert first_red["result"].get("diff") is None and first_red["notified"] is False
        same = await a_run_after(len(await runs(app, monitor_id)), lambda run: True)
        assert same["changed_ratio"] == 0 and same["result"]["diff"]["baseline"]["id"] == await previous_id(same)
        assert receiver.received == [] and (await monitor(app, monitor_id))["last_change"] is None

        SCENES[scene] = BLUE
        assert await wait_for(lambda: len(receiver.received) == 1, 60)
        hit = receiver.received[0]
        assert verify(app.record.webhook_secret, hit.headers[SIGNATURE_HEADER], hit.body)
        notice = json.loads(hit.body)
        assert notice["monitor"]["id"] == monitor_id and notice["monitor"]["name"] == "scene"
        run = notice["run"]
        assert run["notified"] is True and run["changed_ratio"] >= 0.01
        assert run["result"]["diff"]["changed_ratio"] == run["changed_ratio"] and run["result"]["diff"]["regions"]
        # Every good run is the next one's baseline: the blue ones after it are unchanged, nothing more is sent.
        after = await a_run_after(len(await runs(app, monitor_id)), lambda later: True)
        assert after["changed_ratio"] == 0 and after["result"]["diff"]["baseline"]["id"] == await previous_id(after)
        assert len(receiver.received) == 1
        assert (await monitor(app, monitor_id))["last_change"]["result"]["id"] == run["result"]["id"]

        # A blank render in between notifies nothing and is no baseline: the blue page after it is no change.
        SCENES[scene] = Scene(blank=True)
        blanked = await a_run_after(len(await runs(app, monitor_id)), lambda later: "blank_capture" in warning_codes(later))
        assert blanked["changed_ratio"] >= 0.01 and blanked["notified"] is False  # over the threshold, yet quiet
        SCENES[scene] = BLUE
        back = await a_run_after(len(await runs(app, monitor_id)), lambda later: not warning_codes(later))
        assert back["changed_ratio"] == 0 and back["result"]["diff"]["baseline"]["id"] != blanked["result"]["id"]
        assert len(receiver.received) == 1

        async def usage_counts_every_run() -> bool:
            usage = await (await app.client.get("/v1/usage", headers=app.auth())).json()
            return bool(usage["quota"]["used"] == len(await runs(app, monitor_id)))

        # Every run is one credit, none charged twice (equal whenever no run is between commit and record).
        assert await wait_for(usage_counts_every_run, 30)


async def test_delete_stops_the_runs(aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any,
                                     scene: str) -> None:  # fmt: skip
    app = await start(aiohttp_client, monitor_settings(tmp_path, test_site), test_site, shared_pool)
    path = f"/monitored/{scene}"
    body = {"url": test_site.url + path, "interval": 1, "webhook_url": f"{test_site.url}/hook"}
    first = (await (await create(app, body)).json())["id"]
    assert await wait_for(lambda: test_site.log.count(path) >= 2, 30)
    assert (await app.client.delete(f"/v1/monitors/{first}", headers=app.auth())).status == 200
    seen = test_site.log.count(path)
    # Another monitor runs twice: time for several of the deleted one's slots has passed.
    other = (await (await create(app, {**body, "url": f"{test_site.url}/paint?m=1"})).json())["id"]
    assert await wait_for(lambda: len_runs_at_least(app, other, 2), 30)
    assert test_site.log.count(path) <= seen + 1  # at most the run in flight when it was deleted


async def len_runs_at_least(app: JobsApp, monitor_id: str, count: int) -> bool:
    return len(await runs(app, monitor_id)) >= count


def unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_a_restart_keeps_the_monitor_and_runs_a_missed_schedule_once(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str
) -> None:
    settings = monitor_settings(tmp_path, test_site)
    first = await start(aiohttp_client, settings, test_site, shared_pool)
    SCENES[scene] = RED
    body = {"url": f"{test_site.url}/monitored/{scene}", "interval": 1, "webhook_url": f"{test_site.url}/hook"}
    monitor_id = (await (await create(first, body)).json())["id"]
    assert await wait_for(lambda: len_runs_at_least(first, monitor_id, 1), 30)
    await first.client.close()  # the app stops: its scheduler lets the run in flight finish

    store = SqliteMonitorStore(settings.state.sqlite.path)
    stopped, before = await store.get(monitor_id), await store.runs(monitor_id)
    await store.close()
    assert stopped is not None
    # Down for more than two of its slots (the next one and the one after).
    assert await wait_for(lambda: time.time() > stopped.next_run_at + 1.2, 10)
    restarted_at = time.time()
    second = await start(aiohttp_client, settings, test_site, shared_pool, key=(first.record, first.key))
    assert await wait_for(lambda: len_runs_at_least(second, monitor_id, len(before) + 2), 30)
    after = (await runs(second, monitor_id))[::-1][len(before):]
    # The missed slots run once, right away; the one after is a slot after the restart.
    assert unix(after[0]["scheduled_at"]) == pytest.approx(stopped.next_run_at, abs=0.001)
    assert unix(after[1]["scheduled_at"]) > restarted_at
    assert all(run["status"] == "succeeded" for run in after)


async def test_two_instances_on_one_redis_run_each_slot_once(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, redis_server: Any, scene: str
) -> None:
    redis_server.flush()
    settings = monitor_settings(tmp_path, test_site, state={"backend": "redis", "redis": {"url": redis_server.url}},
                                monitors={"workers": 2})  # fmt: skip
    one = await start(aiohttp_client, settings, test_site, shared_pool)
    two = await start(aiohttp_client, settings, test_site, shared_pool, key=(one.record, one.key))
    SCENES[scene] = RED
    body = {"url": f"{test_site.url}/monitored/{scene}", "interval": 1, "webhook_url": f"{test_site.url}/hook"}
    monitor_id = (await (await create(one, body)).json())["id"]
    assert await wait_for(lambda: len_runs_at_least(two, monitor_id, 3), 60)
    slots = sorted(unix(run["scheduled_at"]) for run in await runs(one, monitor_id))
    # No slot ran twice: each is a whole interval after the one before.
    assert all(later - earlier >= 0.999 for earlier, later in itertools.pairwise(slots)), slots
    assert (await one.client.delete(f"/v1/monitors/{monitor_id}", headers=one.auth())).status == 200

    async def settled() -> tuple[int, int]:
        return await one.credits_used(), test_site.log.count(f"/monitored/{scene}")

    # Once the run in flight at the delete is over, every capture the page saw was charged once.
    assert await wait_for(lambda: _equal(settled()), 30), await settled()


async def _equal(pair: Any) -> bool:
    used, hits = await pair
    return bool(used == hits)


async def test_the_clients_manage_monitors(aiohttp_client: Any, tmp_path: Path, test_site: Any,
                                           shared_pool: Any) -> None:  # fmt: skip
    settings = monitor_settings(tmp_path, test_site, monitors={"workers": 0})
    app = await start(aiohttp_client, settings, test_site, shared_pool)
    base = str(app.client.make_url("")).rstrip("/")
    page, hook = f"{test_site.url}/paint", f"{test_site.url}/hook"
    async with ScreenshotClient(base, app.key) as shots:
        created = await shots.create_monitor(page, interval=5, webhook_url=hook, threshold=0.05, name="n", width=640)
        assert (created["interval"], created["threshold"], created["name"], created["options"]) == (
            5, 0.05, "n", {"width": 640})
        assert await shots.list_monitors() == [created]
        assert (await shots.get_monitor(created["id"]))["runs"] == []
        await shots.create_monitor(page, interval=5, webhook_url=hook)
        with pytest.raises(ScreenshotError) as full:
            await shots.create_monitor(page, interval=5, webhook_url=hook)
        assert full.value.status == 422 and full.value.code == "monitor_limit_reached"

    def script() -> tuple[Any, Any]:
        with BlockingScreenshotClient(base, app.key) as blocking:
            gone = blocking.delete_monitor(created["id"])
            return gone, blocking.list_monitors()

    gone, left = await asyncio.to_thread(script)
    assert gone["id"] == created["id"] and created["id"] not in [m["id"] for m in left] and len(left) == 1


async def test_a_run_past_the_quota_fails_with_quota_exceeded_and_is_not_charged(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start(aiohttp_client, monitor_settings(tmp_path, test_site, quota=2), test_site, shared_pool)
    SCENES[scene] = RED
    body = {"url": f"{test_site.url}/monitored/{scene}?token=t0ps3cret", "interval": 1,
            "webhook_url": f"{test_site.url}/hook", "headers": {"X-Token": "hunter2"}}
    monitor_id = (await (await create(app, body)).json())["id"]
    assert await wait_for(lambda: len_runs_at_least(app, monitor_id, 3), 30)
    found = (await runs(app, monitor_id))[::-1]
    assert [run["status"] for run in found[:2]] == ["succeeded", "succeeded"]
    assert {run["error"]["code"] for run in found[2:]} == {"quota_exceeded"}
    assert all(run["result"] is None and run["changed_ratio"] is None for run in found[2:])
    assert (await monitor(app, monitor_id))["last_run"]["error"]["code"] == "quota_exceeded"
    usage = await (await app.client.get("/v1/usage", headers=app.auth())).json()
    assert usage["quota"]["used"] == 2 and test_site.log.count(f"/monitored/{scene}") == 2  # nothing captured since
    # The header and the URL's query reach the target, never a log line; GET shows no header.
    assert "monitor run:" in caplog.text and "hunter2" not in caplog.text and "t0ps3cret" not in caplog.text
    assert "hunter2" not in json.dumps(await monitor(app, monitor_id))


async def test_create_checks_the_plan_the_proxy_and_an_interval_the_baseline_outlives(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any
) -> None:
    settings = monitor_settings(tmp_path, test_site, monitors={"workers": 0}, storage={"retention_days": 1})
    app = await start(aiohttp_client, settings, test_site, shared_pool)
    good = {"url": f"{test_site.url}/paint", "interval": 3600, "webhook_url": f"{test_site.url}/hook"}
    refused = await create(app, {**good, "proxy_pool": "eu"})  # plan 'jobs' may use no pool
    error = (await refused.json())["error"]
    assert refused.status == 400 and "plan 'jobs'" in error["details"]["fields"]["proxy_pool"], error
    blocked = await create(app, {**good, "proxy": "http://127.0.0.1:9"})  # the egress policy refuses it
    error = (await blocked.json())["error"]
    assert (blocked.status, error["code"], error["details"]["field"]) == (400, "blocked_target", "proxy"), error
    # A run compares with the previous run's capture: kept for storage.retention_days (1 day here).
    too_long = await create(app, {**good, "interval": 86401})
    error = (await too_long.json())["error"]
    assert too_long.status == 400 and "retention" in error["details"]["fields"]["interval"], error
    assert (await create(app, {**good, "interval": 86400})).status == 201
    listed = await (await app.client.get("/v1/monitors", headers=app.auth())).json()
    assert len(listed["monitors"]) == 1


async def test_a_full_page_that_only_grew_notifies_as_a_size_change(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str
) -> None:
    SCENES[scene] = Scene(box=(10, 30, 50, 50), height=400)
    async with webhook_receiver() as receiver:
        app = await start(aiohttp_client, hook_settings(tmp_path, test_site, receiver), test_site, shared_pool)
        created = await create(app, {"url": f"{test_site.url}/monitored/{scene}", "interval": 1, "threshold": 0.5,
                                     "webhook_url": receiver.url, "full_page": True, "width": 400, "height": 300})
        assert created.status == 201, await created.text()
        monitor_id = (await created.json())["id"]
        assert await wait_for(lambda: len_runs_at_least(app, monitor_id, 1), 30)
        assert receiver.received == []
        # Longer below, the same above: the common area is unchanged (ratio 0), the page is not.
        SCENES[scene] = Scene(box=(10, 30, 50, 50), height=700)
        assert await wait_for(lambda: len(receiver.received) >= 1, 60), await runs(app, monitor_id)
        run = json.loads(receiver.received[0].body)["run"]
        assert run["changed_ratio"] == 0 and run["result"]["diff"]["size_changed"] is True
        assert run["result"]["height"] == 700 and run["notified"] is True


async def test_runs_follow_the_keys_plan_as_it_is_now(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str
) -> None:
    pools = {"eu": {"urls": ["http://pool.invalid:3128"]}}  # never reached: the plan refuses the pool first
    allowed = monitor_settings(tmp_path, test_site, proxies=pools, monitors={"workers": 0},
                               plan_extra={"proxy_pools": ["*"]})  # fmt: skip
    first = await start(aiohttp_client, allowed, test_site, shared_pool)
    path = f"/monitored/{scene}"
    body = {"url": test_site.url + path, "interval": 1, "webhook_url": f"{test_site.url}/hook", "proxy_pool": "eu"}
    created = await create(first, body)
    assert created.status == 201, await created.text()
    monitor_id = (await created.json())["id"]
    await first.client.close()
    # The operator takes the pool away from the plan: the monitor's runs may not use it any more.
    second = await start(aiohttp_client, monitor_settings(tmp_path, test_site, proxies=pools), test_site,
                         shared_pool, key=(first.record, first.key))  # fmt: skip
    assert await wait_for(lambda: len_runs_at_least(second, monitor_id, 1), 30)
    run = (await runs(second, monitor_id))[-1]
    assert run["status"] == "failed" and "proxy_pool" in run["error"]["details"]["fields"], run
    assert test_site.log.count(path) == 0


async def test_the_monitors_of_a_revoked_key_are_deleted_by_their_next_run(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, shared_pool: Any, scene: str
) -> None:
    from screenshot_service.appkeys import STATE
    from screenshot_service.monitors.keys import MONITORS

    app = await start(aiohttp_client, monitor_settings(tmp_path, test_site), test_site, shared_pool)
    body = {"url": f"{test_site.url}/monitored/{scene}", "interval": 1, "webhook_url": f"{test_site.url}/hook"}
    monitor_id = (await (await create(app, body)).json())["id"]
    assert await wait_for(lambda: len_runs_at_least(app, monitor_id, 1), 30)
    assert await app.app[STATE].revoke_key(app.record.id)
    store = app.app[MONITORS].store

    async def gone() -> bool:
        return await store.get(monitor_id) is None and await store.count() == 0

    assert await wait_for(gone, 30)


async def test_a_run_that_waits_out_a_full_pool_is_still_charged_and_succeeds(
    aiohttp_client: Any, tmp_path: Path, test_site: Any, make_pool: Any, scene: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="screenshot_service.capture")
    pool = await make_pool(pool_size=1, max_queue=0)  # jobs share the sync lane; no queue: full is 503 at once
    # One deadline and the settle margin (9 s) was the credit's old lease: the run below meets a
    # full pool for longer than that, then captures and must still be charged.
    settings = monitor_settings(tmp_path, test_site, capture={"deadline_seconds": 4.0})
    app = await start(aiohttp_client, settings, test_site, pool)
    SCENES[scene] = RED
    body = {"url": f"{test_site.url}/monitored/{scene}", "interval": 3600, "webhook_url": f"{test_site.url}/hook"}
    async with pool.lease():
        monitor_id = (await (await create(app, body)).json())["id"]
        # 40 tries, a quarter of a second apart: the pool was full for more than 10 s.
        assert await wait_for(lambda: caplog.text.count("capture failed: Overloaded") >= 40, 30)
    assert await wait_for(lambda: len_runs_at_least(app, monitor_id, 1), 30)
    run = (await runs(app, monitor_id))[0]
    assert run["status"] == "succeeded", run
    usage = await (await app.client.get("/v1/usage", headers=app.auth())).json()
    assert usage["quota"]["used"] == 1
