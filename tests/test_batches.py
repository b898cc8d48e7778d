"""POST/GET/DELETE /v1/batches end to end: real Chromium, the test site, SQLite state.

What a caller sees decides: the HTTP answers, each item's pixels, /v1/usage, what the
webhook receiver got.  The atomic multi-credit reservation on Redis and the Redis
cluster is in test_batches_state.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from screenshot_service.bench import batches as bench_batches
from screenshot_service.bench import targets
from screenshot_service.bench.service import ServiceHandle
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.client import BlockingScreenshotClient, ScreenshotClient
from screenshot_service.jobs.keys import JOBS
from screenshot_service.jobs.models import now_utc
from screenshot_service.jobs.redis_jobs import RedisJobStore
from screenshot_service.jobs.sqlite_jobs import SqliteJobStore
from screenshot_service.jobs.webhooks import verify
from tests.conftest import Service, image_of, wait_for
from tests.jobs_helpers import JobsApp, plan, settings_for, start_app, webhook_receiver
from tests.site import PAINT_RGB

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.conftest import TestSite
    from tests.redis_server import RedisTestServer

    MakeJobs = Callable[..., Awaitable[JobsApp]]

COLOURS = [(200, 30, 30), (30, 160, 40), (20, 40, 210)]


@pytest.fixture
async def make_jobs(aiohttp_client: Any, tmp_path: Path, test_site: TestSite, shared_pool: BrowserPool) -> MakeJobs:
    """make_jobs(plans=None, key=None, **settings sections): every app on one state file and one capture
    directory, as instances of one deployment (or one instance and its restart) are."""

    async def make(*, plans: dict[str, Any] | None = None, key: Any = None, **sections: Any) -> JobsApp:
        sections.setdefault("storage", {"local": {"path": str(tmp_path / "captures")}})
        settings = settings_for(tmp_path / "svc", test_site, plans=plans, **sections)
        return await start_app(aiohttp_client, settings, test_site, shared_pool, key=key)

    return make


def coloured(rgb: tuple[int, int, int]) -> dict[str, Any]:
    return {"html": f"<body style='margin:0;background:rgb{rgb}'></body>"}


async def post_batch(svc: JobsApp, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    response = await svc.client.post("/v1/batches", json=body, headers={**svc.auth(), **headers})
    return response.status, dict(await response.json())


async def batch_of(svc: JobsApp, batch_id: str) -> dict[str, Any]:
    response = await svc.client.get(f"/v1/batches/{batch_id}", headers=svc.auth())
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def ended(svc: JobsApp, batch_id: str, timeout: float = 90.0) -> dict[str, Any]:
    async def finished() -> bool:
        return (await batch_of(svc, batch_id))["status"] in ("done", "canceled")

    assert await wait_for(finished, timeout), f"batch still {(await batch_of(svc, batch_id))['status']}"
    return await batch_of(svc, batch_id)


async def usage_used(svc: JobsApp) -> int:
    response = await svc.client.get("/v1/usage", headers=svc.auth())
    assert response.status == 200
    return int((await response.json())["quota"]["used"])


async def _queued(svc: JobsApp) -> int:
    """Jobs waiting in the queue (the metrics probe's own count)."""
    return await svc.app[JOBS].store.queued()


async def test_a_batch_runs_each_item_as_a_job_with_its_own_pixels(make_jobs: MakeJobs) -> None:
    svc = await make_jobs()
    body = {"defaults": {"width": 320, "height": 240},
            "requests": [{"url": svc.site.url + "/paint"}, *map(coloured, COLOURS)]}  # fmt: skip
    status, created = await post_batch(svc, body)
    assert status == 202, created
    assert created["id"].startswith("batch_") and created["total"] == 4
    assert created["status"] in ("queued", "running")
    assert created["status_url"].endswith(f"/v1/batches/{created['id']}")
    assert [item["index"] for item in created["items"]] == [0, 1, 2, 3]
    assert await usage_used(svc) == 4  # every credit reserved at once

    done = await ended(svc, created["id"])
    assert done["status"] == "done", done
    assert (done["succeeded"], done["failed"], done["canceled"]) == (4, 0, 0)
    assert done["finished_at"] and done["finished_at"] >= done["created_at"]
    expected = [PAINT_RGB, *COLOURS]
    for item, rgb in zip(done["items"], expected, strict=True):
        assert item["status"] == "succeeded" and item["error"] is None
        result = item["result"]
        assert (result["width"], result["height"]) == (320, 240)  # defaults merged under each item
        image = await svc.client.get("/" + result["url"].split("/", 3)[3])
        assert image_of(await image.read()).convert("RGB").getpixel((200, 200)) == rgb
        job = await svc.job(item["job_id"])  # each item is an ordinary job too
        assert job["status"] == "succeeded" and job["result"] == result and job["batch_id"] == created["id"]
    assert await usage_used(svc) == 4
    metrics = await (await svc.client.get("/metrics")).text()
    assert "screenshot_batches_total 1.0" in metrics
    assert 'screenshot_batch_items_total{outcome="queued"} 4.0' in metrics
    assert 'screenshot_batch_items_total{outcome="succeeded"} 4.0' in metrics


async def test_every_invalid_item_is_named_and_nothing_is_queued_or_reserved(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    body = {"defaults": {"quality": 500},
            "requests": [{"url": svc.site.url + "/paint"}, {"url": "ftp://x.example/"}, {"width": 50}, "nope",
                         {"url": svc.site.url + "/paint", "webhook_url": "https://hook.example/"}]}  # fmt: skip
    status, answer = await post_batch(svc, body)
    assert status == 400
    error = answer["error"]
    assert error["code"] == "invalid_parameter"
    fields = error["details"]["fields"]
    assert set(fields) == {"defaults.quality", "requests[1].url", "requests[2].width", "requests[2].url",
                           "requests[3]", "requests[4].webhook_url"}, fields  # fmt: skip
    assert await usage_used(svc) == 0 and await _queued(svc) == 0

    for requests in ([], "x", [{"url": svc.site.url}] * 101):
        status, answer = await post_batch(svc, {"requests": requests})
        assert status == 400 and set(answer["error"]["details"]["fields"]) == {"requests"}, answer
    status, answer = await post_batch(svc, {"defaults": [], "requests": [{"url": svc.site.url}]})
    assert status == 400 and "defaults" in answer["error"]["details"]["fields"]
    assert await usage_used(svc) == 0 and await _queued(svc) == 0


async def test_blocked_item_targets_and_webhook_are_refused_by_name(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    ok = {"url": svc.site.url + "/paint"}
    status, answer = await post_batch(svc, {"requests": [ok, {"url": "http://10.1.2.3/"}, ok,
                                                         {"url": "http://127.0.0.1:1/"}]})  # fmt: skip
    assert status == 400 and answer["error"]["code"] == "blocked_target", answer
    assert set(answer["error"]["details"]["fields"]) == {"requests[1].url", "requests[3].url"}
    status, answer = await post_batch(svc, {"requests": [ok], "webhook_url": "http://10.1.2.3/hook"})
    assert status == 400 and answer["error"]["details"]["field"] == "webhook_url", answer
    assert await usage_used(svc) == 0 and await _queued(svc) == 0


async def test_items_pass_a_jobs_plan_and_proxy_checks_named_where_they_came_from(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(plans={"jobs": plan(custom_proxy=False)}, jobs={"workers": 0})
    ok = {"url": svc.site.url + "/paint"}
    status, answer = await post_batch(svc, {"requests": [{**ok, "proxy_pool": "eu"}, ok,
                                                         {**ok, "proxy": "http://127.0.0.1:9"}]})  # fmt: skip
    assert status == 400 and answer["error"]["code"] == "invalid_parameter", answer
    fields = answer["error"]["details"]["fields"]
    assert set(fields) == {"requests[0].proxy_pool", "requests[2].proxy"}, fields
    assert "plan 'jobs'" in fields["requests[2].proxy"]
    status, answer = await post_batch(svc, {"defaults": {"proxy_pool": "eu"}, "requests": [ok, ok]})
    assert status == 400 and set(answer["error"]["details"]["fields"]) == {"defaults.proxy_pool"}, answer
    svc = await make_jobs(jobs={"workers": 0})  # its own proxies allowed: the address is judged by the egress policy
    status, answer = await post_batch(svc, {"defaults": {"proxy": "http://127.0.0.1:9"}, "requests": [ok, ok]})
    assert status == 400 and answer["error"]["code"] == "blocked_target", answer
    assert answer["error"]["details"]["field"] == "defaults.proxy", answer
    assert await usage_used(svc) == 0 and await _queued(svc) == 0


async def test_a_compare_to_id_this_key_cannot_use_is_refused_before_anything_is_queued(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    ok = {"url": svc.site.url + "/paint"}
    unknown = {**ok, "compare_to": "cap_" + "A" * 24}
    status, answer = await post_batch(svc, {"requests": [ok, unknown, {**ok, "compare_to": "previous"}]})
    assert status == 400 and set(answer["error"]["details"]["fields"]) == {"requests[1].compare_to"}, answer
    status, answer = await post_batch(svc, {"defaults": {"compare_to": unknown["compare_to"]}, "requests": [ok]})
    assert status == 400 and set(answer["error"]["details"]["fields"]) == {"defaults.compare_to"}, answer
    job = await svc.client.post("/v1/jobs", json=unknown, headers=svc.auth())
    assert job.status == 400 and set((await job.json())["error"]["details"]["fields"]) == {"compare_to"}
    assert await usage_used(svc) == 0 and await _queued(svc) == 0


async def test_a_quota_that_cannot_cover_every_item_reserves_nothing(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(plans={"jobs": plan(monthly_captures=3)}, jobs={"workers": 0})
    first = await svc.submit_ok()
    assert await usage_used(svc) == 1
    status, answer = await post_batch(svc, {"requests": [coloured(rgb) for rgb in COLOURS]})
    assert status == 422 and answer["error"]["code"] == "quota_exceeded", answer
    assert answer["error"]["details"]["needed"] == 3 and answer["error"]["details"]["remaining"] == 2
    assert await usage_used(svc) == 1 and await _queued(svc) == 1  # only the earlier job
    status, _ = await post_batch(svc, {"requests": [coloured(rgb) for rgb in COLOURS[:2]]})
    assert status == 202 and await usage_used(svc) == 3
    assert first["status"] == "queued"


async def test_max_queued_jobs_counts_every_item(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(plans={"jobs": plan(max_queued_jobs=3)}, jobs={"workers": 0})
    await svc.submit_ok()
    status, answer = await post_batch(svc, {"requests": [coloured(rgb) for rgb in COLOURS]})
    assert status == 429 and answer["error"]["code"] == "concurrency_limited", answer
    status, answer = await post_batch(svc, {"requests": [coloured(COLOURS[0])] * 4})
    assert status == 400 and set(answer["error"]["details"]["fields"]) == {"requests"}
    assert await usage_used(svc) == 1 and await _queued(svc) == 1


async def test_delete_cancels_the_queued_items_and_refunds_them(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})  # nothing runs: every item stays queued
    status, created = await post_batch(svc, {"requests": [coloured(rgb) for rgb in COLOURS]})
    assert status == 202 and await usage_used(svc) == 3
    response = await svc.client.delete(f"/v1/batches/{created['id']}", headers=svc.auth())
    assert response.status == 200
    canceled = await response.json()
    assert canceled["status"] == "canceled" and canceled["canceled"] == 3 and canceled["finished_at"]
    assert all(item["status"] == "canceled" for item in canceled["items"])
    assert await usage_used(svc) == 0
    again = await svc.client.delete(f"/v1/batches/{created['id']}", headers=svc.auth())
    assert again.status == 200 and await usage_used(svc) == 0
    for item in canceled["items"]:
        assert (await svc.job(item["job_id"]))["status"] == "canceled"


async def test_an_item_canceled_alone_counts_as_a_canceled_batch_item(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    status, created = await post_batch(svc, {"requests": [coloured(rgb) for rgb in COLOURS[:2]]})
    assert status == 202
    for _ in range(2):  # a repeated DELETE cancels nothing more
        response = await svc.client.delete(f"/v1/jobs/{created['items'][0]['job_id']}", headers=svc.auth())
        assert response.status == 200
    metrics = await (await svc.client.get("/metrics")).text()
    assert 'screenshot_batch_items_total{outcome="canceled"} 1.0' in metrics
    assert (await batch_of(svc, created["id"]))["canceled"] == 1 and await usage_used(svc) == 1


async def test_a_batch_is_invisible_to_another_key(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    status, created = await post_batch(svc, {"requests": [coloured(COLOURS[0])]})
    assert status == 202
    _, other = await svc.new_key()
    for method in ("GET", "DELETE"):
        response = await svc.client.request(method, f"/v1/batches/{created['id']}", headers=svc.auth(other))
        assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    response = await svc.client.get("/v1/batches/batch_nope", headers=svc.auth())
    assert response.status == 404
    assert (await batch_of(svc, created["id"]))["items"][0]["status"] == "queued"


async def test_idempotency_key_replays_the_batch(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0})
    body = {"requests": [coloured(rgb) for rgb in COLOURS]}
    status, first = await post_batch(svc, body, **{"Idempotency-Key": "b-1"})
    assert status == 202
    status, replay = await post_batch(svc, body, **{"Idempotency-Key": "b-1"})
    assert status == 200 and replay["id"] == first["id"]
    assert await usage_used(svc) == 3 and await _queued(svc) == 3
    status, other = await post_batch(svc, {"requests": body["requests"][:1]}, **{"Idempotency-Key": "b-1"})
    assert status == 422 and other["error"]["code"] == "idempotency_mismatch"
    assert await usage_used(svc) == 3


async def test_one_signed_webhook_when_every_item_has_ended(make_jobs: MakeJobs, test_site: TestSite) -> None:
    async with webhook_receiver() as receiver:
        svc = await make_jobs(egress={"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{receiver.port}"]},
                              jobs={"workers": 2})  # fmt: skip
        requests = [*map(coloured, COLOURS), {"url": svc.site.url + "/status?code=500", "fail_on_http_error": True}]
        status, created = await post_batch(svc, {"requests": requests, "webhook_url": receiver.url})
        assert status == 202, created
        done = await ended(svc, created["id"])
        assert await wait_for(lambda: done_webhook(svc, created["id"]), 30)
        assert await wait_for(lambda: _settled(svc), 30)
        assert len(receiver.received) == 1  # one webhook for the batch, none per item
        hit = receiver.received[0]
        assert verify(svc.record.webhook_secret, hit.headers["X-Signature"], hit.body)
        sent = json.loads(hit.body)
        assert sent["id"] == created["id"] and sent["status"] == "done"
        assert (sent["succeeded"], sent["failed"]) == (3, 1)
        assert sent["items"] == done["items"]
        assert sent["items"][3]["error"]["code"] == "target_http_error"
        assert (await batch_of(svc, created["id"]))["webhook"] == {"status": "delivered", "attempts": 1}
        assert await usage_used(svc) == 3  # the failed item refunded


async def done_webhook(svc: JobsApp, batch_id: str) -> bool:
    return bool((await batch_of(svc, batch_id)).get("webhook", {}).get("status") == "delivered")


async def test_items_ended_before_a_crash_get_the_batch_webhook_after_the_restart(
    make_jobs: MakeJobs, test_site: TestSite, tmp_path: Path
) -> None:
    async with webhook_receiver() as receiver:
        allow = {"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{receiver.port}"]}
        first = await make_jobs(egress=allow, jobs={"workers": 0})
        status, created = await post_batch(first, {"requests": [coloured(rgb) for rgb in COLOURS[:2]],
                                                   "webhook_url": receiver.url})  # fmt: skip
        assert status == 202
        # A worker that ends every item and dies before its webhook: its leases are left to run out.
        ghost = SqliteJobStore(tmp_path / "svc" / "state.sqlite3")
        try:
            for _ in created["items"]:
                job = await ghost.claim("ghost-host:1:dead", 0.5)
                assert job is not None and job.batch_id == created["id"]
                failed = job.with_changes(status="failed", finished_at=now_utc(), error={"code": "internal_error"})
                assert await ghost.finish(failed, "ghost-host:1:dead", 3600)
        finally:
            await ghost.close()
        assert (await batch_of(first, created["id"]))["status"] == "done"
        assert receiver.received == []
        await first.client.close()
        restarted = await make_jobs(egress=allow, jobs={"workers": 1}, key=(first.record, first.key))
        assert await wait_for(lambda: done_webhook(restarted, created["id"]), 30)
        assert await wait_for(lambda: _settled(restarted), 30)
        assert len(receiver.received) == 1
        sent = json.loads(receiver.received[0].body)
        assert sent["id"] == created["id"] and sent["failed"] == 2
        assert await usage_used(restarted) == 0  # failed items are refunded by whoever settles them


async def _settled(svc: JobsApp) -> bool:
    """Nothing left in the queue: every item settled and acked, claimed or not (so no late webhook)."""
    store = svc.app[JOBS].store
    if isinstance(store, RedisJobStore):
        leased = await store.client.zcard(f"{store.prefix}leases")
        return int(leased) == 0 and await store.queued() == 0
    assert isinstance(store, SqliteJobStore)
    rows = await store.file.run(lambda db: db.execute("SELECT COUNT(*) FROM jobs WHERE in_queue = 1").fetchone())
    return int(rows[0]) == 0


async def test_two_instances_ending_items_at_once_send_one_webhook(
    make_jobs: MakeJobs, test_site: TestSite, redis_server: RedisTestServer
) -> None:
    redis_server.start()
    redis_server.flush()
    async with webhook_receiver() as receiver:
        sections = {"egress": {"allow": [f"127.0.0.1:{test_site.port}", f"127.0.0.1:{receiver.port}"]},
                    "state": {"backend": "redis", "redis": {"url": redis_server.url}}, "jobs": {"workers": 2}}
        a = await make_jobs(**sections)
        b = await make_jobs(**sections, key=(a.record, a.key))
        requests = [coloured(COLOURS[n % 3]) for n in range(8)]
        status, created = await post_batch(a, {"requests": requests, "webhook_url": receiver.url})
        assert status == 202
        done = await ended(b, created["id"])
        assert done["succeeded"] == 8
        assert await wait_for(lambda: done_webhook(a, created["id"]), 30)
        assert await wait_for(lambda: _settled(a), 30)
        assert len(receiver.received) == 1
        assert json.loads(receiver.received[0].body)["items"] == done["items"]
        assert await usage_used(b) == 8


async def test_the_clients_submit_and_wait_for_a_batch(service: Service) -> None:
    base = str(service.client.make_url("")).rstrip("/")
    requests = [{"url": service.site.url + "/paint"}, coloured(COLOURS[0])]
    async with ScreenshotClient(base, service.key) as shots:
        batch = await shots.submit_batch(requests, defaults={"width": 400, "height": 300})
        assert batch["id"].startswith("batch_") and batch["total"] == 2
        done = await shots.wait_batch(batch, timeout=60, poll_interval=0.1)
        assert done["status"] == "done" and [i["result"]["width"] for i in done["items"]] == [400, 400]
        same = await shots.submit_batch(requests, idempotency_key="b1")
        again = await shots.submit_batch(requests, idempotency_key="b1")
        assert again["id"] == same["id"] != batch["id"]

    def script() -> dict[str, Any]:  # what a synchronous program does, in a thread of its own
        with BlockingScreenshotClient(base, service.key) as blocking:
            return blocking.wait_batch(blocking.submit_batch([coloured(COLOURS[1])]), poll_interval=0.1)

    finished = await asyncio.to_thread(script)
    assert finished["status"] == "done" and finished["succeeded"] == 1


async def test_openapi_documents_the_batch_operations(service: Service) -> None:
    doc = await (await service.client.get("/v1/openapi.json")).json()
    operations = {op["operationId"] for path in ("/v1/batches", "/v1/batches/{id}") for op in doc["paths"][path].values()}
    assert operations == {"createBatch", "getBatch", "cancelBatch"}
    body = doc["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "width" in body["properties"]["requests"]["items"]["properties"]
    assert "webhook_url" not in body["properties"]["requests"]["items"]["properties"]
    assert set(doc["components"]["schemas"]["Batch"]["required"]) >= {"id", "status", "items", "total"}
    assert "batchEnded" in doc["webhooks"]


async def test_openapi_limits_follow_the_running_config(make_jobs: MakeJobs) -> None:
    svc = await make_jobs(jobs={"workers": 0, "max_batch": 7}, storage={"retention_days": 2})
    doc = await (await svc.client.get("/v1/openapi.json")).json()
    body = doc["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["requests"]["maxItems"] == 7
    monitor = doc["paths"]["/v1/monitors"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert monitor["properties"]["interval"]["maximum"] == 2 * 86400


async def test_the_bench_batch_phase_runs_a_real_batch_and_is_judged(service: Service) -> None:
    handle = ServiceHandle(base_url=str(service.client.make_url("")).rstrip("/"), api_key=service.key)
    async with aiohttp.ClientSession() as session:
        seconds, batch = await bench_batches._batch(handle, session, [coloured(COLOURS[0])] * 2)
    assert seconds > 0 and batch["status"] == "done" and batch["succeeded"] == 2
    measured = {"items": 50, "concurrency": 4, "jobs_workers": 4, "sync_seconds": 10.0, "sync_per_s": 5.0,
                "sync_errors": 0, "batch_seconds": 12.5, "batch_per_s": 4.0, "batch_failed": 0}  # fmt: skip
    for ratio, passed in ((0.8, False), (0.95, True)):
        [target] = [t for t in targets.evaluate({"batch": {**measured, "throughput_ratio": ratio}})
                    if t.name.startswith("batch:")]  # fmt: skip
        assert target.passed is passed and f"= {ratio}x" in target.detail
