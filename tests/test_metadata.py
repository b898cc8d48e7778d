"""metadata=true (SPEC §3.2): what the page says about itself, absolute and bounded."""

from __future__ import annotations

import json
import uuid
from typing import Any

from screenshot_service.signing import signed_url
from tests.blocking_site import WEB_FONT
from tests.conftest import Service, wait_for


async def test_metadata_reads_every_tag_with_absolute_urls(service: Service) -> None:
    token = uuid.uuid4().hex
    base = f"{service.site.url}/bm/{token}/"
    response = await service.shot(f"/bm/{token}/meta", metadata="true", wait_until="networkidle0")
    body = await response.json()
    assert response.status == 200, body
    meta = body["metadata"]
    assert meta["title"] == "The Title" and meta["description"] == "A description" and meta["lang"] == "fr-CA"
    assert meta["canonical_url"] == f"{service.site.url}/bm/canon"
    assert meta["icons"] == [base + "favicon.ico", f"{service.site.url}/touch.png"]
    assert meta["open_graph"] == {"title": "OG Title", "image": f"{service.site.url}/img/og.png", "url": base + "page"}
    assert meta["twitter"] == {"card": "summary", "image": base + "tw.png"}
    assert WEB_FONT in meta["fonts"]  # the heading's loaded web font
    assert service.site.log.count(f"/bm/{token}/font.ttf") == 1


async def test_no_metadata_key_unless_asked(service: Service) -> None:
    body = await (await service.shot(f"/bm/{uuid.uuid4().hex}/meta")).json()
    assert "metadata" not in body


async def test_a_cache_hit_returns_the_metadata(service: Service) -> None:
    path = f"/bm/{uuid.uuid4().hex}/meta"
    first = await (await service.shot(path, metadata="true", cache="true")).json()
    again = await (await service.shot(path, metadata="true", cache="true")).json()
    assert again["cached"] is True and again["metadata"] == first["metadata"] and first["metadata"]["title"]


async def test_a_hostile_page_gets_bounded_metadata(service: Service) -> None:
    response = await service.shot(f"/bm/{uuid.uuid4().hex}/hostile", metadata="true")
    body = await response.json()
    assert response.status == 200, body
    meta = body["metadata"]
    assert len(meta["description"]) == 2000 and len(meta["open_graph"]["title"]) == 2000
    assert len(meta["title"]) == 2000  # the page's own redefinition of document.title is not seen
    assert len(meta["lang"]) <= 128 and meta["canonical_url"] is None  # a javascript: URL is dropped
    assert len(meta["open_graph"]) == 64 and len(meta["icons"]) == 32
    assert all(isinstance(v, str) for v in meta["open_graph"].values())
    assert len(json.dumps(meta)) < 200_000


async def test_bad_metadata_value_is_a_400_naming_it(service: Service) -> None:
    response = await service.shot("/paint", metadata="maybe")
    body = await response.json()
    assert response.status == 400 and "boolean" in body["error"]["details"]["fields"]["metadata"]


async def test_a_job_carries_metadata_and_blocking(service: Service) -> None:
    token = uuid.uuid4().hex
    response = await service.client.post("/v1/jobs", headers=service.auth(), json={
        "url": f"{service.site.url}/bm/{token}/page", "metadata": True, "block_resources": ["image"],
        "wait_until": "networkidle0"})
    assert response.status == 202, await response.text()
    job_id = (await response.json())["id"]

    async def finished() -> dict[str, Any] | None:
        job = await (await service.client.get(f"/v1/jobs/{job_id}", headers=service.auth())).json()
        return job if job["status"] in ("succeeded", "failed") else None

    assert await wait_for(finished, timeout=60)
    job = await finished()
    assert job is not None and job["status"] == "succeeded", job
    assert job["result"]["blocked_requests"] == 1 and WEB_FONT in job["result"]["metadata"]["fonts"]
    assert service.site.log.count(f"/bm/{token}/red.png") == 0


async def test_a_signed_link_carries_metadata_and_blocking(service: Service) -> None:
    token = uuid.uuid4().hex
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    base = str(service.client.make_url("")).rstrip("/")
    link = signed_url(base, service.key_id, record.signing_secret, f"{service.site.url}/bm/{token}/meta",
                      response_type="json", metadata="true", block_requests="*.ttf")
    async with service.client.session.get(link) as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["metadata"]["title"] == "The Title" and body["blocked_requests"] == 1
    assert WEB_FONT not in body["metadata"]["fonts"]  # its face never loaded: the fallback rendered
    assert service.site.log.count(f"/bm/{token}/font.ttf") == 0
