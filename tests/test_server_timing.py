"""Every capture answer says where its time went: a W3C Server-Timing header with the stages
that ran (auth, cache, admission, navigation, capture, store, settle) and the total.

Durations are only checked for consistency (present, non-negative, their sum within the
total): how long a stage takes is the benchmark's business, never a test's.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from screenshot_service.capture.timing import STAGES, TOTAL, parse_server_timing
from tests.conftest import Service, image_of
from tests.site import PAINT_RGB

# What the service sends: comma-separated `name;dur=<ms>` (a subset of the W3C syntax).
_METRIC = r"[a-z]+;dur=\d+(?:\.\d+)?"
_HEADER = re.compile(rf"{_METRIC}(?:, {_METRIC})*")
FRESH = ("auth", "admission", "navigation", "capture", "store", "settle")  # a fresh capture's stages


def stages_of(response: Any) -> dict[str, float]:
    """The answer's Server-Timing as milliseconds by metric, checked for syntax and consistency."""
    value = response.headers.get("Server-Timing")
    assert value is not None, f"no Server-Timing on a {response.status} answer"
    assert _HEADER.fullmatch(value), value
    metrics = parse_server_timing(value)
    assert list(metrics)[-1] == TOTAL and set(metrics) - {TOTAL} <= set(STAGES), value
    assert all(ms >= 0 for ms in metrics.values()), value
    total = metrics.pop(TOTAL)
    assert sum(metrics.values()) <= total, value
    return metrics


async def test_a_fresh_capture_reports_every_stage_in_each_response_type(service: Service) -> None:
    before = service.site.log.count("/paint")
    image = await service.shot("/paint", response_type="image")
    assert image.status == 200 and image_of(await image.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert set(stages_of(image)) == set(FRESH)

    encoded = await service.shot("/paint", response_type="base64")
    body = await encoded.json()
    assert encoded.status == 200 and image_of(base64.b64decode(body["image_base64"])).size == (1280, 800)
    assert set(stages_of(encoded)) == set(FRESH)

    posted = await service.client.post("/v1/screenshot", json={"url": service.site.url + "/paint"},
                                       headers=service.auth())
    assert posted.status == 200 and (await posted.json())["format"] == "png"
    assert set(stages_of(posted)) == set(FRESH)
    assert service.site.log.count("/paint") == before + 3  # each one a real capture


async def test_a_cache_hit_reports_only_the_stages_that_ran(service: Service) -> None:
    miss = await service.shot("/paint", cache="true", cache_ttl=600)
    assert miss.status == 200 and miss.headers["X-Cache"] == "MISS"
    assert set(stages_of(miss)) == {*FRESH, "cache"}  # looked up, then written after delivery

    hit = await service.shot("/paint", cache="true", cache_ttl=600, response_type="image")
    assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
    assert image_of(await hit.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB
    assert set(stages_of(hit)) == {"auth", "cache"}  # nothing rendered, nothing admitted


async def test_a_failed_capture_reports_its_stages_but_an_unknown_caller_gets_none(service: Service) -> None:
    failed = await service.client.get(
        "/v1/screenshot", params={"url": "http://nonexistent.invalid/", "api_key": service.key})
    assert failed.status == 502 and (await failed.json())["error"]["code"] == "target_unreachable"
    assert {"auth", "admission", "navigation"} <= set(stages_of(failed))  # it failed resolving the host

    invalid = await service.shot("/paint", width=0)
    assert invalid.status == 400 and "width" in (await invalid.json())["error"]["details"]["fields"]
    assert set(stages_of(invalid)) == {"auth"}  # known caller, refused options

    stranger = await service.client.get("/v1/screenshot", params={"url": service.site.url + "/paint",
                                                                  "api_key": "sk_not_a_key"})
    assert stranger.status == 401 and "Server-Timing" not in stranger.headers


async def test_a_timed_out_capture_shows_the_stage_that_ran_out_of_time(service: Service) -> None:
    timed_out = await service.shot("/never-loads", timeout=2)
    assert timed_out.status == 504 and (await timed_out.json())["error"]["code"] == "capture_timeout"
    assert set(stages_of(timed_out)) == {"auth", "admission", "navigation"}


async def test_the_openapi_document_names_the_header(service: Service) -> None:
    document = await (await service.client.get("/v1/openapi.json")).json()
    for method in ("get", "post"):
        header = document["paths"]["/v1/screenshot"][method]["responses"]["200"]["headers"]["Server-Timing"]
        assert all(stage in header["description"] for stage in STAGES)
