"""The opt-in capture cache: a hit renders nothing and charges nothing; off by default."""

from __future__ import annotations

from typing import Any

from screenshot_service.limits.quota import current_period
from tests.conftest import Service, image_of
from tests.site import PAINT_RGB


async def used(service: Service) -> int:
    return await service.state.credits_used(service.key_id, current_period().name)


async def test_cache_hit_returns_cached_true_and_charges_once(service: Service) -> None:
    before = service.site.log.count("/paint")
    first = await service.shot("/paint", cache="true", cache_ttl=600)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    first_body = await first.json()
    second = await service.shot("/paint", cache="true", cache_ttl=600, response_type="base64")
    assert second.status == 200 and second.headers["X-Cache"] == "HIT"
    body = await second.json()
    assert body["cached"] is True and body["url"] == first_body["url"]
    import base64

    assert image_of(base64.b64decode(body["image_base64"])).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert service.site.log.count("/paint") == before + 1  # rendered once
    assert await used(service) == 1  # charged once


async def test_cache_is_off_by_default(service: Service) -> None:
    first = await (await service.shot("/paint")).json()
    second = await (await service.shot("/paint")).json()
    assert first["url"] != second["url"] and second["cached"] is False
    assert await used(service) == 2


async def test_different_options_or_accounts_do_not_share_entries(make_service: Any, service: Service) -> None:
    await service.shot("/paint", cache="1")
    other_options = await (await service.shot("/paint", cache="1", width=800)).json()
    assert other_options["cached"] is False
    other_account: Service = await make_service()
    assert (await (await other_account.shot("/paint", cache="1")).json())["cached"] is False


async def test_cache_ttl_is_validated(service: Service) -> None:
    response = await service.shot("/paint", cache="1", cache_ttl=2592001)
    assert response.status == 400
    assert "cache_ttl" in (await response.json())["error"]["details"]["fields"]
