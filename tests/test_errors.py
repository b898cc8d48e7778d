"""Every answer is SPEC §4's error JSON, whatever went wrong: a request aiohttp's parser refuses,
a wrong method, an unknown route, a layer's failure; every code is in OpenAPI; and a client's
mistake never logs a traceback."""

from __future__ import annotations

import logging

import pytest

from screenshot_service.browser import errors as browser
from screenshot_service.egress import errors as egress
from screenshot_service.error_map import as_api_error
from screenshot_service.errors import InvalidParameter, error_codes
from screenshot_service.faults import LayerError
from screenshot_service.state import errors as state
from screenshot_service.storage import errors as storage
from tests.conftest import Service
from tests.raw_http import MALFORMED, SECRET, exchange


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with_traceback = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.exc_text]
    assert not with_traceback, with_traceback
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_what_aiohttps_parser_refuses_is_a_json_400_without_a_traceback(
    service: Service, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    assert service.client.server.port is not None
    answer = await exchange(service.client.server.port, MALFORMED[case])
    assert answer.status == 400, answer
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    error = answer.json()["error"]
    assert set(answer.json()) == {"error"} and set(error) == {"status", "code", "message"}
    assert error["status"] == 400 and error["code"] == "malformed_request"
    assert error["message"].startswith("the request is not valid HTTP: ") and len(error["message"]) < 300
    assert answer.headers.get("x-request-id")
    assert_no_traceback(caplog)
    # The parser quotes what it refused; a query string may carry a key: neither answer nor log repeats it.
    assert SECRET not in answer.body and SECRET.decode() not in caplog.text
    assert any(r.name == "screenshot_service.errors" and "malformed request" in r.getMessage() for r in caplog.records)
    # A client's mistake costs it its connection, nothing more: the service keeps serving.
    response = await service.client.get("/healthz")
    assert response.status == 200


async def test_a_body_that_cannot_be_decoded_is_a_json_400_that_closes_the_connection(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Its headers parse, so a handler runs; reading the body fails (gzip announced, not sent)."""
    caplog.set_level(logging.DEBUG)
    assert service.client.server.port is not None
    head = (f"POST /v1/screenshot HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.key}\r\n"
            "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n")
    answer = await exchange(service.client.server.port, head.encode() + b"0123456789")
    assert answer.status == 400 and answer.headers["content-type"].startswith("application/json")
    assert answer.headers.get("connection", "").lower() == "close"
    assert answer.json() == {"error": {"status": 400, "code": "malformed_body",
                                       "message": "the request body could not be read: Can not decode content-encoding"}}
    assert_no_traceback(caplog)
    assert (await service.client.get("/healthz")).status == 200


async def test_wrong_method_is_a_json_405_naming_the_allowed_ones(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await service.client.delete("/v1/screenshot", headers=service.auth())
    assert response.status == 405
    assert response.content_type == "application/json"
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "DELETE" not in allowed
    assert await response.json() == {"error": {
        "status": 405, "code": "method_not_allowed", "message": "method DELETE is not allowed on /v1/screenshot",
        "details": {"allowed": sorted(allowed)}}}
    assert response.headers["X-Request-ID"]
    assert_no_traceback(caplog)


async def test_unknown_route_and_unknown_expectation_are_json(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    route = await service.client.get("/v1/nothing-here")
    assert route.status == 404 and route.content_type == "application/json"
    assert await route.json() == {"error": {"status": 404, "code": "not_found",
                                            "message": "no route for GET /v1/nothing-here"}}
    expect = await service.client.post("/v1/screenshot", data=b"{}", headers={**service.auth(), "Expect": "magic"})
    assert expect.status == 417 and expect.content_type == "application/json"
    assert (await expect.json())["error"]["code"] == "expectation_failed"
    assert_no_traceback(caplog)


async def test_openapi_lists_every_code_under_its_status(service: Service) -> None:
    doc = await (await service.client.get("/v1/openapi.json")).json()
    listed = doc["components"]["responses"]
    table = error_codes()
    assert set(listed) == set(table)
    for status, codes in table.items():
        for code in codes:
            assert code in listed[status]["description"].split(", "), (status, code)
    assert "Allow" in listed["405"]["headers"] and "malformed_request" in listed["400"]["description"]
    capture_400 = doc["paths"]["/v1/screenshot"]["get"]["responses"]["400"]["description"]
    assert "malformed_request" in capture_400.split(", ")
    # One code, one status: a client can switch on the code alone.
    codes = [code for codes in table.values() for code in codes]
    assert len(codes) == len(set(codes))


# Each layer's exception and the SPEC §4 answer it becomes at the edge.
LAYER_CODES: dict[type[LayerError], tuple[int, str]] = {
    state.StateError: (503, "state_unavailable"),
    state.StateUnavailable: (503, "state_unavailable"),
    storage.StorageError: (502, "storage_error"),
    storage.BucketRejected: (400, "invalid_parameter"),
    browser.PoolError: (503, "browser_unavailable"),
    browser.BrowserUnavailable: (503, "browser_unavailable"),
    browser.Overloaded: (503, "overloaded"),
    browser.PageMemoryExceeded: (422, "page_memory_exceeded"),
    egress.EgressError: (502, "target_unreachable"),
    egress.InvalidUrl: (400, "invalid_url"),
    egress.TargetUnreachable: (502, "target_unreachable"),
    egress.EgressBlocked: (400, "blocked_target"),
}


def _every_layer_error() -> set[type[LayerError]]:
    found: set[type[LayerError]] = set()
    pending = list(LayerError.__subclasses__())
    while pending:
        kind = pending.pop()
        found.add(kind)
        pending.extend(kind.__subclasses__())
    return found


def test_every_layer_exception_has_its_code_and_keeps_message_details_and_retry_after() -> None:
    assert _every_layer_error() == set(LAYER_CODES), "a layer exception without a §4 code"
    for kind, (status, code) in LAYER_CODES.items():
        if kind is storage.BucketRejected:
            raised: LayerError = storage.BucketRejected({"s3.bucket": "bucket b does not exist"})
        else:
            raised = kind("what happened", details={"host": "example.com"}, retry_after=1.5)
        answer = as_api_error(raised)
        assert (answer.status, answer.code) == (status, code), kind
        assert answer.message == raised.message and answer.details == raised.details
        if kind is not storage.BucketRejected:
            assert answer.response_headers()["Retry-After"] == "2"


def test_an_error_keeps_the_status_and_code_of_its_class() -> None:
    error = InvalidParameter("bad")
    with pytest.raises(AttributeError):
        error.status = 405  # type: ignore[misc]
    with pytest.raises(AttributeError):
        error.code = "method_not_allowed"  # type: ignore[misc]
    assert (error.status, error.code) == (400, "invalid_parameter")
