"""metadata=true (SPEC §3.2): what the page says about itself, absolute and bounded."""

from __future__ import annotations

import json
import uuid

from tests.blocking_site import WEB_FONT
from tests.conftest import Service


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
    assert response.status == 400 and "metadata" in json.dumps(body["error"])
