"""Navigations the page starts itself (Step 15, finding 3): followed, waited for and judged like the first document.

``html`` or a page's own script takes the main frame elsewhere before the capture: the capture is
of the new document, whose status decides ``http_error`` / ``fail_on_http_error`` and whose URL
is ``page.final_url``; the egress policy still holds; a page that navigates for ever is a clean
502, and the service keeps serving.  Real Chromium, the local test site.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from screenshot_service.browser.pool import BrowserPool
from screenshot_service.capture.loading import MAX_PAGE_NAVIGATIONS
from tests import conftest
from tests.conftest import Service, image_of
from tests.jobs_helpers import settings_for, start_app
from tests.site import PAINT_RGB


async def _used(service: Service) -> int:
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    return int(usage["quota"]["used"])


async def _post(service: Service, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await service.client.post("/v1/screenshot", json=body, headers=service.auth())
    return response.status, await response.json()


def _to(path: str, **params: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/navigates?to={quote(path, safe='')}{extra}"


@pytest.fixture(scope="module")
def refused_url() -> Iterator[str]:
    """Loopback on a port egress.allow does not list (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.mark.parametrize("wait_until", ["load", "networkidle0", "ready"])
async def test_html_that_sets_location_is_the_page_it_went_to(service: Service, wait_until: str) -> None:
    status, body = await _post(service, html=f"<script>location = '{service.site.url}/paint'</script>",
                               wait_until=wait_until, response_type="base64")
    assert status == 200, body
    assert body["page"]["final_url"] == service.site.url + "/paint" and body["page"]["status_code"] == 200
    assert image_of(base64.b64decode(body["image_base64"])).convert("RGB").getpixel((200, 200)) == PAINT_RGB


# After load, the page goes to an error page; only that page has a <div>, so waiting for one
# makes sure the navigation is under way before the capture (no race with the page's timer).
AFTER_LOAD = {"after": "0"}
ON_THE_ERROR_PAGE = {"wait_for_selector": "div"}


async def test_a_script_navigation_to_an_error_page_is_an_http_error_warning(service: Service) -> None:
    response = await service.shot(_to("/status?code=404", **AFTER_LOAD), **ON_THE_ERROR_PAGE)
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["final_url"] == service.site.url + "/status?code=404"
    assert body["page"]["status_code"] == 404 and body["page"]["title"] == "Error 404"
    warnings = {w["code"]: w for w in body["warnings"]}
    assert warnings["http_error"]["details"] == {"status": 404}


async def test_fail_on_http_error_fails_a_script_navigation_to_an_error_page_like_a_direct_one(
    service: Service
) -> None:
    before = await _used(service)
    direct = await (await service.shot("/status?code=500", fail_on_http_error="true")).json()
    for path, extra in ((_to("/status?code=500"), {}), (_to("/status?code=500", **AFTER_LOAD), ON_THE_ERROR_PAGE)):
        response = await service.shot(path, fail_on_http_error="true", **extra)
        error = (await response.json())["error"]
        assert (response.status, error["code"], error["details"]) == (502, direct["error"]["code"], {"status": 500})
    assert await _used(service) == before  # none of the three charged
    assert (await service.shot("/paint")).status == 200


async def test_an_error_page_that_navigates_on_is_judged_by_where_it_lands(service: Service) -> None:
    # A 404 page whose script goes on to /paint: the capture is of /paint, and says nothing of a 404.
    response = await service.shot(_to("/paint", code="404"), fail_on_http_error="true")
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["final_url"] == service.site.url + "/paint" and body["warnings"] == []


async def test_a_script_navigation_the_egress_policy_refuses_is_blocked_target(
    service: Service, refused_url: str
) -> None:
    before = await _used(service)
    for path, extra in ((_to(refused_url), {}), (_to(refused_url, **AFTER_LOAD), {"delay": 1000})):
        response = await service.shot(path, **extra)
        body = await response.json()
        assert (response.status, body["error"]["code"]) == (400, "blocked_target"), body
        assert body["error"]["details"]["host"] == "127.0.0.1"
    assert await _used(service) == before


async def test_a_page_that_navigates_for_ever_is_a_clean_502_and_the_service_keeps_serving(service: Service) -> None:
    before = await _used(service)
    response = await service.shot("/loop")
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (502, "target_unreachable"), body
    assert body["error"]["details"]["navigations"] == MAX_PAGE_NAVIGATIONS
    assert "kept navigating" in body["error"]["message"]
    assert await _used(service) == before
    after = await service.shot("/paint", response_type="image")
    assert after.status == 200
    assert image_of(await after.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB


async def test_a_navigation_during_delay_is_followed_and_judged(service: Service) -> None:
    # The page navigates right after load; the capture waits 1.5 s after load: the navigation
    # falls in that wait, and its document is the one captured and judged.
    response = await service.shot(_to("/status?code=503", **AFTER_LOAD), delay=1500)
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["status_code"] == 503 and [w["code"] for w in body["warnings"]] == ["http_error"]


async def test_a_navigation_in_the_middle_of_the_full_page_reveal_is_followed(service: Service) -> None:
    # The tall page leaves for /paint when first scrolled: under the service's own reveal script.
    response = await service.shot(_to("/paint", on="scroll"), full_page="true", response_type="base64")
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["final_url"] == service.site.url + "/paint"
    image = image_of(base64.b64decode(body["image_base64"])).convert("RGB")
    assert image.size == (1280, 800) and image.getpixel((200, 200)) == PAINT_RGB


async def test_a_navigation_that_commits_while_the_page_is_captured_is_judged_before_any_result(
    service: Service
) -> None:
    # The reveal's scroll sends the page to a slow error page: whenever its document commits (under
    # the reveal, while the network settles, or during the shot), the result is that page's verdict.
    before = await _used(service)
    response = await service.shot(_to("/status?code=500&delay=1000", on="scroll"), full_page="true",
                                  fail_on_http_error="true")
    body = await response.json()
    assert (response.status, body["error"]["details"]) == (502, {"status": 500}), body
    assert await _used(service) == before


async def test_the_callers_js_that_navigates_runs_once_and_the_rest_applies_to_the_new_page(service: Service) -> None:
    response = await service.shot("/titled", js="location.href = '/paint'", response_type="base64",
                                  css="body { background: rgb(0,0,255) !important }")
    body = await response.json()
    assert response.status == 200, body
    image = image_of(base64.b64decode(body["image_base64"])).convert("RGB")
    assert image.getpixel((200, 200)) == PAINT_RGB and image.getpixel((10, 10)) == (0, 0, 255)
    assert body["page"]["final_url"] == service.site.url + "/paint"


async def test_fragment_and_history_changes_are_not_new_documents(service: Service) -> None:
    html = ("<title>same</title><div style='width:100%;height:100vh;background:rgb(0,128,0)'></div>"
            "<script>location.hash = 'x'; history.pushState({}, '', '#y');"
            "addEventListener('load', () => { location.hash = 'z'; history.replaceState({}, '', '#w'); });</script>")
    for wait_until in ("load", "networkidle0"):
        status, body = await _post(service, html=html, wait_until=wait_until)
        assert status == 200, body
        assert body["page"] == {"final_url": None, "status_code": None, "title": "same", "redirects": 0}


async def test_a_navigation_answered_204_leaves_the_page_where_it_was(service: Service) -> None:
    path, seen = _to("/status?code=204"), service.site.log.count("/status")
    response = await service.shot(path)
    body = await response.json()
    assert response.status == 200, body
    assert body["page"]["final_url"] == service.site.url + path and body["page"]["status_code"] == 200
    assert service.site.log.count("/status") == seen + 1  # it did go there


async def test_a_download_the_page_starts_is_target_unreachable(service: Service) -> None:
    for body in ({"html": f"<script>location = '{service.site.url}/download'</script>"},
                 {"url": service.site.url + _to("/download")}):
        status, answer = await _post(service, **body)
        assert (status, answer["error"]["code"]) == (502, "target_unreachable"), answer
        assert "download" in answer["error"]["message"]


async def test_a_job_follows_the_navigation_too(
    aiohttp_client: Any, tmp_path: Path, test_site: conftest.TestSite, shared_pool: BrowserPool
) -> None:
    jobs = await start_app(aiohttp_client, settings_for(tmp_path, test_site), test_site, shared_pool)
    landed = await jobs.wait_done((await jobs.submit_ok(_to("/titled?t=Landed")))["id"])
    assert landed["status"] == "succeeded", landed
    assert landed["result"]["page"]["final_url"] == test_site.url + "/titled?t=Landed"
    assert landed["result"]["page"]["title"] == "Landed"
    failing = await jobs.submit_ok(_to("/status?code=404", **AFTER_LOAD), fail_on_http_error=True, **ON_THE_ERROR_PAGE)
    failed = await jobs.wait_done(failing["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "target_http_error", failed
    assert await jobs.credits_used() == 1  # the job that failed is not charged
