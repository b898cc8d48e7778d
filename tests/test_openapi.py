"""/v1/openapi.json is complete and true: schemathesis drives the live service with it."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import checks

from screenshot_service.capture.declaration import BODY
from screenshot_service.capture.options import accepted_at
from screenshot_service.egress.errors import TargetUnreachable
from tests.conftest import Service


class _EverythingIsTestNet:
    """Every generated hostname resolves to TEST-NET-1: refused by egress, no browser, no DNS."""

    async def resolve(self, host: str, port: int) -> list[Any]:
        if not host:
            raise TargetUnreachable("empty host")
        return [ipaddress.ip_address("192.0.2.1")]


async def test_document_lists_every_endpoint_option_and_error(service: Service) -> None:
    response = await service.client.get("/v1/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"] == "3.1.0"
    for path in ("/v1/screenshot", "/v1/jobs", "/v1/jobs/{id}", "/v1/files/{name}", "/v1/usage",
                 "/v1/openapi.json", "/", "/healthz", "/readyz", "/metrics"):
        assert path in doc["paths"], path
    body = doc["paths"]["/v1/screenshot"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(accepted_at(BODY)) <= set(body["properties"])
    assert body["properties"]["width"] == {"type": "integer", "minimum": 100, "maximum": 3840, "default": 1280,
                                           "description": "Viewport width in CSS pixels."}
    query = {p["name"] for p in doc["paths"]["/v1/screenshot"]["get"]["parameters"]}
    assert "html" not in query and "s3" not in query and "full_page" in query
    codes = " ".join(r["description"] for r in doc["paths"]["/v1/screenshot"]["get"]["responses"].values())
    for code in ("invalid_parameter", "rate_limited", "quota_exceeded", "capture_timeout", "overloaded"):
        assert code in codes


# What the issue asks: no server error (500), and every response conforms to the document (status, content
# type, headers, body). "Valid data accepted" is left out: cross-field rules (selector with
# clip, cookies with html, ...) are 400s by design and are listed in each 400's description.
CHECKS = [checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]

SAMPLES = {"screenshotGet": 25, "screenshotPost": 25, "createJob": 15}


async def test_schemathesis_finds_no_server_errors_and_responses_conform(make_service: Any) -> None:
    service: Service = await make_service(resolver=_EverythingIsTestNet(), jobs={"workers": 0})
    doc = await (await service.client.get("/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(doc)
    base_url = str(service.client.make_url("/")).rstrip("/")
    headers = {"Authorization": f"Bearer {service.key}"}
    failures: list[str] = []

    def exercise(operation: Any, examples: int) -> None:
        @hypothesis.settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.headers = {**(case.headers or {}), **headers}
            # Generated pages may wait for selectors that never appear: keep each try short.
            if isinstance(case.body, dict) and "timeout" not in case.body:
                case.body["timeout"] = 3
            if case.query is not None and case.formatted_path == "/v1/screenshot" and "timeout" not in case.query:
                case.query["timeout"] = 3
            response = case.call(base_url=base_url, timeout=40)
            # 502/503/504 are documented outcomes of a capture; a 500 is always a bug.
            if response.status_code == 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException as exc:  # FailureGroup is an exception group: collected, reported below
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

        check()

    for result in schema.get_all_operations():
        operation = result.ok()
        examples = SAMPLES.get(operation.definition.raw.get("operationId", ""), 10)
        # schemathesis calls are blocking: run them off the loop that serves the app
        await asyncio.to_thread(exercise, operation, examples)
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("path", ["/v1/openapi.json"])
async def test_openapi_is_served_without_a_key(service: Service, path: str) -> None:
    assert (await service.client.get(path)).status == 200
