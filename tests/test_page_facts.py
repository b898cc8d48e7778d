"""Page facts in every JSON result (sync, job, cached) and fail_on_http_error (real Chromium, the test site)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from screenshot_service.limits.quota import current_period
from tests.conftest import Service, image_of


async def _json(service: Service, path: str, **params: Any) -> dict[str, Any]:
    response = await service.shot(path, **params)
    body = await response.json()
    assert response.status == 200, body
    return body


async def test_facts_of_a_plain_page(service: Service) -> None:
    body = await _json(service, "/titled?t=Hello%20facts")
    assert body["page"] == {"final_url": service.site.url + "/titled?t=Hello%20facts", "status_code": 200,
                            "title": "Hello facts", "redirects": 0}
    assert body["warnings"] == []


async def test_facts_after_redirects_name_the_final_document(service: Service) -> None:
    body = await _json(service, "/hops?n=3&to=/titled%3Ft%3DLanded")
    page = body["page"]
    assert page["final_url"] == service.site.url + "/titled?t=Landed"
    assert page["status_code"] == 200
    assert page["title"] == "Landed"
    assert page["redirects"] == 3


@pytest.mark.parametrize("code", [404, 503])
async def test_error_page_is_captured_with_its_status_and_an_http_error_warning(service: Service, code: int) -> None:
    body = await _json(service, f"/status?code={code}")
    assert body["page"]["status_code"] == code
    assert body["page"]["title"] == f"Error {code}"
    assert body["page"]["final_url"] == service.site.url + f"/status?code={code}"
    warnings = {w["code"]: w for w in body["warnings"]}
    assert set(warnings) == {"http_error"}
    assert warnings["http_error"]["details"] == {"status": code}


async def test_redirect_to_an_error_page_counts_the_hops(service: Service) -> None:
    body = await _json(service, "/hops?n=2&to=/status%3Fcode%3D404")
    assert body["page"]["redirects"] == 2
    assert body["page"]["status_code"] == 404


@pytest.mark.parametrize("code", [404, 503])
async def test_fail_on_http_error_is_a_502_and_refunds_the_credit(service: Service, code: int) -> None:
    before = await _used(service)
    response = await service.shot(f"/status?code={code}", fail_on_http_error="true")
    body = await response.json()
    assert response.status == 502, body
    assert body["error"]["code"] == "target_http_error"
    assert body["error"]["details"] == {"status": code}
    assert await _settled_used(service, before)


async def test_fail_on_http_error_does_not_wait_for_a_selector_the_error_page_lacks(service: Service) -> None:
    response = await service.shot("/status?code=404", fail_on_http_error="true", wait_for_selector="#never")
    body = await response.json()
    assert response.status == 502 and body["error"]["details"] == {"status": 404}, body


async def test_a_redirect_the_egress_policy_refuses_stays_blocked_target(service: Service) -> None:
    # The proxy's refusal page answers 403; it is a blocked target, not the target's HTTP error.
    for extra in ({}, {"fail_on_http_error": "true"}):
        response = await service.shot("/redirect?to=http://127.0.0.1:18181/refused", **extra)
        body = await response.json()
        assert response.status == 400 and body["error"]["code"] == "blocked_target", body


async def test_fail_on_http_error_lets_a_good_page_through(service: Service) -> None:
    body = await _json(service, "/hops?n=1&to=/paint", fail_on_http_error="true")
    assert body["page"]["status_code"] == 200 and body["warnings"] == []


async def test_html_input_has_no_status_and_no_url(service: Service) -> None:
    response = await service.client.post("/v1/screenshot", json={
        "api_key": service.key, "html": "<title>Inline</title><p style='font-size:40px'>inline</p>"})
    body = await response.json()
    assert response.status == 200, body
    assert body["page"] == {"final_url": None, "status_code": None, "title": "Inline", "redirects": 0}


async def test_cached_result_carries_the_same_page_and_warnings(service: Service) -> None:
    first = await _json(service, "/status?code=404", cache="true")
    second = await _json(service, "/status?code=404", cache="true")
    assert second["cached"] is True
    assert second["page"] == first["page"] and second["page"]["status_code"] == 404
    assert second["warnings"] == first["warnings"] and first["warnings"][0]["code"] == "http_error"


async def test_job_result_carries_page_and_warnings(service: Service) -> None:
    response = await service.client.post("/v1/jobs", json={
        "api_key": service.key, "url": service.site.url + "/hops?n=1&to=/status%3Fcode%3D404"})
    job = await response.json()
    assert response.status == 202, job
    for _ in range(600):  # bounded: at most ~60 s of polling, no timing assumed
        job = await (await service.client.get(f"/v1/jobs/{job['id']}", headers=service.auth())).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        await asyncio.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert job["result"]["page"]["status_code"] == 404
    assert job["result"]["page"]["redirects"] == 1
    assert [w["code"] for w in job["result"]["warnings"]] == ["http_error"]


async def test_image_response_carries_warning_codes_in_a_header(service: Service) -> None:
    response = await service.shot("/status?code=404", response_type="image")
    assert response.status == 200
    assert response.headers["X-Capture-Warnings"] == "http_error"
    image_of(await response.read())
    clean = await service.shot("/paint", response_type="image")
    assert clean.status == 200 and "X-Capture-Warnings" not in clean.headers


async def test_logs_carry_the_host_not_the_final_url(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await _json(service, "/hops?n=1&to=/titled%3Ft%3Dsecret-path-token")
    # The service's own loggers (the test client's aiohttp.access line is not the service's log).
    ours = [r for r in caplog.records if r.name.startswith("screenshot_service")]
    assert not [r.getMessage() for r in ours if "secret-path-token" in r.getMessage()]


async def _used(service: Service) -> int:
    return await service.state.credits_used(service.key_id, current_period().name)


async def _settled_used(service: Service, expected: int) -> bool:
    # Refunds may settle in the background: wait on the condition, with a bound.
    for _ in range(100):
        if await _used(service) == expected:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_openapi_documents_the_new_options_results_warnings_and_error(service: Service) -> None:
    doc = await (await service.client.get("/v1/openapi.json")).json()
    body = doc["paths"]["/v1/screenshot"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for name in ("disable_animations", "fail_on_http_error", "timezone", "locale", "geolocation"):
        assert name in body["properties"] and body["properties"][name]["description"] != name, name
    assert "ready" in body["properties"]["wait_until"]["enum"]
    query = {p["name"] for p in doc["paths"]["/v1/screenshot"]["get"]["parameters"]}
    assert {"timezone", "locale", "geolocation", "disable_animations", "fail_on_http_error"} <= query
    result = doc["components"]["schemas"]["CaptureResult"]
    assert {"page", "warnings"} <= set(result["required"])
    assert result["properties"]["warnings"]["items"]["properties"]["code"]["enum"] == [
        "http_error", "fonts_not_loaded", "images_broken", "blank_capture", "ready_timeout", "clamped",
        "pdf_header_clipped", "content_truncated", "no_baseline"]
    assert set(result["properties"]["page"]["properties"]) == {"final_url", "status_code", "title", "redirects"}
    ok = doc["paths"]["/v1/screenshot"]["get"]["responses"]["200"]
    assert "X-Capture-Warnings" in ok["headers"]
    assert "target_http_error" in doc["paths"]["/v1/screenshot"]["get"]["responses"]["502"]["description"]


def test_readme_documents_every_option_and_warning() -> None:
    from pathlib import Path

    from screenshot_service.capture.facts import WARNING_CODES
    from screenshot_service.capture.options import OPTIONS, WAIT_UNTIL

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("### Capture options", 1)[1].split("###", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for name in OPTIONS:
        assert any(f"`{name}`" in row.split("|")[1] for row in rows), name
    for value in WAIT_UNTIL:
        assert value in table, value
    trust = readme.split("### Captures you can trust", 1)[1].split("\n## ", 1)[0]
    for code in WARNING_CODES:
        assert f"| `{code}` |" in trust, code
    assert "X-Capture-Warnings" in readme and "target_http_error" in readme
