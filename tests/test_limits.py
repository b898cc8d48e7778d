"""Plans over HTTP: rate limits, concurrency caps, monthly quotas, refunds, Redis sharing."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from screenshot_service import config_loading
from screenshot_service.app import create_app
from screenshot_service.limits.keys import create_key
from screenshot_service.limits.quota import current_period
from screenshot_service.state.redis import RedisStateStore
from screenshot_service.state.sqlite import SqliteStateStore
from tests.conftest import Service, base_settings, wait_for
from tests.site import held_back

TINY = {"requests_per_second": 1000, "burst": 1000, "monthly_captures": 3, "concurrency": 10}
TEN = {"requests_per_second": 1000, "burst": 1000, "monthly_captures": 10, "concurrency": 100}
LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                 "X-RateLimit-Reset", "X-Quota-Limit", "X-Quota-Remaining")


async def used(service: Service) -> int:
    return await service.state.credits_used(service.key_id, current_period().name)


async def test_free_plan_burst_of_three_gives_one_200_and_two_429(make_service: Any) -> None:
    service: Service = await make_service(plan="free")
    responses = await asyncio.gather(*(service.shot("/paint") for _ in range(3)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 429, 429]
    for response in responses:
        for header in LIMIT_HEADERS:
            assert header in response.headers, header
        if response.status == 429:
            error = (await response.json())["error"]
            assert error["code"] == "rate_limited"
            # The caller is known: its refusal says where the time went, as every capture answer does.
            assert response.headers["Server-Timing"].startswith("auth;dur=")
            assert "1 request per second on plan 'free'" in error["message"]
            assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert responses[0].headers["RateLimit-Policy"] == '"free";q=1;w=1'
    assert await used(service) == 1


async def test_rate_limit_headers_count_down(make_service: Any) -> None:
    service: Service = await make_service(plan="pro")
    first = await service.client.get("/v1/usage", headers=service.auth())
    second = await service.client.get("/v1/usage", headers=service.auth())
    assert first.headers["X-RateLimit-Limit"] == "20"
    assert int(second.headers["X-RateLimit-Remaining"]) < int(first.headers["X-RateLimit-Remaining"])
    assert second.headers["X-Quota-Limit"] == "50000"


async def test_fourth_capture_on_a_three_capture_plan_is_422(make_service: Any) -> None:
    service: Service = await make_service(plan="tiny", plans={"tiny": TINY})
    for _ in range(3):
        assert (await service.shot("/paint")).status == 200
    fourth = await service.shot("/paint")
    assert fourth.status == 422
    error = (await fourth.json())["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["resets_at"] == current_period().resets_at_iso
    assert fourth.headers["X-Quota-Remaining"] == "0"
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    assert usage["quota"] == {"period": current_period().name, "limit": 3, "used": 3, "remaining": 0,
                              "resets_at": current_period().resets_at_iso}
    assert usage["plan"] == "tiny" and usage["rate"]["requests_per_second"] == 1000


async def test_failed_captures_are_never_charged(service: Service) -> None:
    timed_out = await service.shot("/hang", timeout=1)
    assert timed_out.status == 504
    unreachable = await service.client.get(
        "/v1/screenshot", params={"url": "http://nowhere.invalid/"}, headers=service.auth()
    )
    assert unreachable.status == 502
    assert await used(service) == 0


async def test_fifty_concurrent_requests_with_ten_credits_charge_exactly_ten(
    make_service: Any, make_pool: Any
) -> None:
    pool = await make_pool(pool_size=2, max_queue=64)
    service: Service = await make_service(pool=pool, plan="ten", plans={"ten": TEN})
    responses = await asyncio.gather(*(service.shot("/paint") for _ in range(50)))
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 10
    assert statuses.count(422) == 40
    assert await used(service) == 10


async def test_concurrency_cap_per_key(make_service: Any) -> None:
    service: Service = await make_service(
        plan="single", plans={"single": {"requests_per_second": 100, "burst": 100, "concurrency": 1}}
    )
    seen = service.site.log.count("/slow")
    with held_back() as gate:  # the first capture's page answers when the block ends
        slow = asyncio.ensure_future(service.shot(f"/slow?gate={gate}"))
        assert await wait_for(lambda: service.site.log.count("/slow") > seen, 30)  # in flight: its slot is taken
        second = await service.shot("/paint")
        assert second.status == 429
        assert (await second.json())["error"]["code"] == "concurrency_limited"
        assert "Retry-After" in second.headers
        assert not slow.done()  # refused while the first capture still held the key's one slot
    assert (await slow).status == 200


async def test_counters_survive_a_restart(make_service: Any) -> None:
    service: Service = await make_service()
    for _ in range(2):
        assert (await service.shot("/paint")).status == 200
    await service.client.close()
    reopened = SqliteStateStore(service.settings.state.sqlite.path)
    try:
        assert await reopened.credits_used(service.key_id, current_period().name) == 2
    finally:
        await reopened.close()


async def test_revoked_key_is_401(service: Service) -> None:
    assert await service.state.revoke_key(service.key_id)
    response = await service.shot("/paint")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_api_key"


async def test_missing_and_unknown_keys_are_401(service: Service) -> None:
    missing = await service.client.get("/v1/screenshot", params={"url": service.site.url + "/paint"})
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "missing_api_key"
    unknown = await service.client.get("/v1/usage", headers={"X-API-Key": "sk_" + "x" * 43})
    assert unknown.status == 401
    assert (await unknown.json())["error"]["code"] == "invalid_api_key"


# -- several instances on one Redis -----------------------------------------------------------


async def _redis_instances(
    aiohttp_client: Any, tmp_path: Any, test_site: Any, shared_pool: Any, redis_url: str, plans: dict[str, Any]
) -> tuple[TestClient, TestClient]:
    clients = []
    for name in ("a", "b"):
        settings = base_settings(tmp_path / name, test_site.port, state={"backend": "redis", "redis": {"url": redis_url}},
                                 plans=plans)
        clients.append(await aiohttp_client(create_app(settings, pool=shared_pool)))
    return clients[0], clients[1]


async def _redis_key(redis_url: str, plan: str) -> str:
    store = RedisStateStore(redis_url)
    try:
        _, raw = await create_key(store, plan, "shared")
    finally:
        await store.close()
    return raw


async def test_two_instances_share_one_rate_limit_and_one_quota(
    aiohttp_client: Any, tmp_path: Any, test_site: Any, shared_pool: Any, redis_server: Any
) -> None:
    redis_server.flush()
    plans = {"shared": {"requests_per_second": 1, "burst": 1, "monthly_captures": 2, "concurrency": 5}}
    a, b = await _redis_instances(aiohttp_client, tmp_path, test_site, shared_pool, redis_server.url, plans)
    key = await _redis_key(redis_server.url, "shared")
    params = {"url": test_site.url + "/paint", "api_key": key}
    # The same moment on two instances: one bucket, so exactly one gets through.
    first, second = await asyncio.gather(a.get("/v1/screenshot", params=params),
                                         b.get("/v1/screenshot", params=params))
    assert sorted((first.status, second.status)) == [200, 429]
    assert (await (first if first.status == 429 else second).json())["error"]["code"] == "rate_limited"

    async def once_the_rate_allows(client: TestClient, path: str, **request: Any) -> Any:
        """The first answer that is not 429: the shared bucket refilled (a refusal takes nothing from it)."""
        answers: list[Any] = []

        async def answered() -> bool:
            answers.append(await client.get(path, **request))
            if answers[-1].status == 429:
                answers[-1].release()
                return False
            return True

        assert await wait_for(answered, 30), "still rate limited after 30 s"
        return answers[-1]

    third = await once_the_rate_allows(b, "/v1/screenshot", params=params)
    assert third.status == 200
    fourth = await once_the_rate_allows(a, "/v1/screenshot", params=params)
    assert fourth.status == 422  # two captures used between the two instances
    usage = await once_the_rate_allows(a, "/v1/usage", headers={"X-API-Key": key})
    assert (await usage.json())["quota"]["used"] == 2


async def test_redis_down_fails_closed_and_recovers(
    aiohttp_client: Any, tmp_path: Any, test_site: Any, shared_pool: Any, redis_server: Any
) -> None:
    redis_server.flush()
    plans = {"roomy": {"requests_per_second": 100, "burst": 100, "monthly_captures": 100, "concurrency": 5}}
    a, _ = await _redis_instances(aiohttp_client, tmp_path, test_site, shared_pool, redis_server.url, plans)
    key = await _redis_key(redis_server.url, "roomy")
    params = {"url": test_site.url + "/paint", "api_key": key}
    assert (await a.get("/v1/screenshot", params=params)).status == 200
    redis_server.stop()
    try:
        down = await a.get("/v1/screenshot", params=params)
        assert down.status == 503
        error = (await down.json())["error"]
        assert error["code"] == "state_unavailable"
        assert "Redis" in error["message"] and redis_server.url not in error["message"]
        assert "Retry-After" in down.headers
        assert (await a.get("/healthz")).status == 200  # the process keeps serving
        assert (await a.get("/readyz")).status == 503
    finally:
        redis_server.start()
    key = await _redis_key(redis_server.url, "roomy")  # a restarted Redis without persistence is empty
    params["api_key"] = key
    assert (await a.get("/v1/screenshot", params=params)).status == 200
    assert (await a.get("/readyz")).status == 200


def test_custom_plan_names_load_from_config(tmp_path: Any) -> None:
    path = tmp_path / "plans.toml"
    path.write_text('[plans.startup]\nrequests_per_second = 5\nmonthly_captures = 1000\n')
    settings = config_loading.load(path, {})
    assert set(settings.plans) == {"startup"}
    assert settings.plans["startup"].requests_per_second == 5
    assert settings.plans["startup"].burst == 1  # unspecified keys take the PlanConfig defaults
