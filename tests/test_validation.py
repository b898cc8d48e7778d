"""Bad input: a clear 4xx JSON error naming the field, and the service keeps serving."""

from __future__ import annotations

import io
import os
import time
from typing import Any

import pytest

from screenshot_service.storage.local import LocalStorage
from tests.conftest import Service


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"width": "50"}, "width"),
        ({"width": "4000"}, "width"),
        ({"height": "abc"}, "height"),
        ({"height": "2161"}, "height"),
        ({"device_scale_factor": "4"}, "device_scale_factor"),
        ({"device_scale_factor": "x"}, "device_scale_factor"),
        ({"full_page": "maybe"}, "full_page"),
        ({"format": "gif"}, "format"),
        ({"quality": "0"}, "quality"),
        ({"quality": "101"}, "quality"),
        ({"wait_until": "idle"}, "wait_until"),
        ({"delay": "-1"}, "delay"),
        ({"delay": "10001"}, "delay"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": "31"}, "timeout"),
        ({"response_type": "xml"}, "response_type"),
        ({"max_height": "1"}, "max_height"),
        ({"widht": "800"}, "widht"),
    ],
)
async def test_each_bad_query_parameter_is_named(service: Service, params: dict[str, str], field: str) -> None:
    response = await service.client.get(
        "/v1/screenshot", params={"url": service.site.url + "/paint", **params}, headers=service.auth()
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert field in error["details"]["fields"]
    assert field in error["message"]


async def test_unknown_parameter_lists_the_known_names(service: Service) -> None:
    response = await service.client.get(
        "/v1/screenshot", params={"url": service.site.url, "fullpage": "1"}, headers=service.auth()
    )
    details = (await response.json())["error"]["details"]
    assert details["fields"]["fullpage"] == "unknown parameter"
    assert "full_page" in details["known_parameters"]


async def test_missing_url_is_named(service: Service) -> None:
    response = await service.client.get("/v1/screenshot", headers=service.auth())
    assert response.status == 400
    assert "url" in (await response.json())["error"]["details"]["fields"]


async def test_several_problems_are_reported_together(service: Service) -> None:
    response = await service.client.post(
        "/v1/screenshot", json={"url": service.site.url, "width": 1, "format": "bmp"}, headers=service.auth()
    )
    fields = (await response.json())["error"]["details"]["fields"]
    assert {"width", "format"} <= set(fields)


async def test_json_types_are_checked(service: Service) -> None:
    response = await service.client.post(
        "/v1/screenshot", json={"url": service.site.url, "width": "wide", "full_page": "yes please"},
        headers=service.auth(),
    )
    assert response.status == 400
    assert {"width", "full_page"} <= set((await response.json())["error"]["details"]["fields"])


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "malformed_body"), (b"[1, 2]", "malformed_body"), (b"", "malformed_body"),
     (b"\xff\xfe", "malformed_body")],
)
async def test_malformed_bodies(service: Service, body: bytes, code: str) -> None:
    response = await service.client.post(
        "/v1/screenshot", data=body, headers={**service.auth(), "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code


async def test_oversized_body_is_413(service: Service) -> None:
    huge = io.BytesIO(b'{"url": "' + b"a" * (4 * 1024 * 1024) + b'"}')
    response = await service.client.post(
        "/v1/screenshot", data=huge, headers={**service.auth(), "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_unknown_route_and_file_are_json_404(service: Service) -> None:
    route = await service.client.get("/v2/nothing")
    assert route.status == 404 and (await route.json())["error"]["code"] == "not_found"
    missing = await service.client.get("/v1/files/" + "a" * 27 + ".png")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    traversal = await service.client.get("/v1/files/..%2Fstate.sqlite3")
    assert traversal.status == 404


async def test_wrong_method_is_json_405(service: Service) -> None:
    response = await service.client.delete("/v1/screenshot")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_service_keeps_serving_after_bad_input(service: Service) -> None:
    for _ in range(3):
        await service.client.post("/v1/screenshot", data=b"{", headers=service.auth())
    response = await service.shot("/paint")
    assert response.status == 200


async def test_request_id_is_echoed_or_generated(service: Service) -> None:
    echoed = await service.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = await service.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["X-Request-ID"] != "bad id with spaces" and len(generated.headers["X-Request-ID"]) >= 16


def test_local_storage_sweeps_captures_older_than_retention(tmp_path: Any) -> None:
    storage = LocalStorage(tmp_path, retention_days=30)
    old, fresh = tmp_path / ("o" * 27 + ".png"), tmp_path / ("f" * 27 + ".png")
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    assert storage.sweep() == 1
    assert not old.exists() and fresh.exists()
