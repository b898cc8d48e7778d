"""Extracted content (SPEC §3.2): extract=html/markdown/text beside the image, and format=html/markdown/text
alone, read from real Chromium on the test site and fetched back where the service stored them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from screenshot_service.capture.content_options import MAX_CONTENT_BYTES
from screenshot_service.client import ScreenshotClient, signed_url
from tests.conftest import Service, image_of, wait_for
from tests.content_site import HIDDEN_TEXTS
from tests.test_cli import run_async, write_config
from tests.test_storage_service import s3_sections

TYPES = {"html": "text/html; charset=utf-8", "markdown": "text/markdown; charset=utf-8",
         "text": "text/plain; charset=utf-8"}


async def fetch(url: str) -> tuple[str, bytes]:
    """(content type, body) of a stored file, by the URL the result gave."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, url
        return response.headers["Content-Type"], await response.read()


async def ok(service: Service, path: str = "/content/article", **params: Any) -> dict[str, Any]:
    response = await service.shot(path, **params)
    body = await response.json()
    assert response.status == 200, body
    return body


def check_markdown(markdown: str, origin: str) -> None:
    assert markdown.startswith("# Main Title\n")
    for line in ("## Lists", "### Table", "- Apples", "  - Green apple", "  - Red apple", "- Pears",
                 "1. First step", "2. Second step", "| Name | Count |", "| Alpha | 1 |", "| Beta | 2 |",
                 "Written by script"):
        assert f"\n{line}" in markdown, (line, markdown)
    assert f"[relative link]({origin}/docs/page?x=1)" in markdown
    assert f"![A picture]({origin}/content/img/pic.png)" in markdown
    assert "```python\ndef answer():\n    return 42\n```" in markdown
    assert "Before script" not in markdown
    for hidden in HIDDEN_TEXTS:
        assert hidden not in markdown, (hidden, markdown)


async def test_each_extract_kind_is_stored_beside_the_image(service: Service) -> None:
    body = await ok(service, extract="markdown,text,html")
    assert image_of(base64.b64decode((await ok(service, response_type="base64"))["image_base64"])).size == (1280, 800)
    assert body["format"] == "png" and set(body["content"]) == {"html", "markdown", "text"}
    files = {}
    for kind, stored in body["content"].items():
        content_type, files[kind] = await fetch(stored["url"])
        assert content_type == TYPES[kind] and stored["bytes"] == len(files[kind])
    check_markdown(files["markdown"].decode(), service.site.url)
    html = files["html"].decode()
    assert html.startswith("<!doctype html><html lang=\"en\"><head>")
    assert "Written by script" in html and "Display none secret" in html  # the DOM, whole, as scripts left it
    text = files["text"].decode()
    assert "Main Title" in text and "Written by script" in text and "Alpha\t1" in text
    for hidden in ("Display none secret", "Hidden attribute secret", "Visibility hidden secret", "Script secret"):
        assert hidden not in text
    plain = await ok(service)
    assert "content" not in plain


@pytest.mark.parametrize("fmt", ["markdown", "html", "text"])
async def test_format_alone_answers_the_document(service: Service, fmt: str) -> None:
    response = await service.shot("/content/article", format=fmt, response_type="image")
    assert response.status == 200 and response.headers["Content-Type"] == TYPES[fmt]
    document = (await response.read()).decode("utf-8")
    if fmt == "markdown":
        check_markdown(document, service.site.url)
    else:
        assert ("<h1>Main Title</h1>" if fmt == "html" else "Main Title\n") in document
    as_json = await ok(service, format=fmt)
    assert as_json["format"] == fmt and (as_json["width"], as_json["height"]) == (1280, 800)
    content_type, stored = await fetch(as_json["url"])
    assert content_type == TYPES[fmt] and stored.decode() == document and as_json["bytes"] == len(stored)
    as_base64 = await ok(service, format=fmt, response_type="base64")
    assert base64.b64decode(as_base64["image_base64"]).decode() == document


async def test_content_goes_to_s3_beside_the_image(make_service: Any, s3_server: Any, s3_bucket: str) -> None:
    service: Service = await make_service(**s3_sections(s3_server, s3_bucket))
    body = await ok(service, extract="markdown")
    assert body["content"]["markdown"]["url"].startswith(s3_server.endpoint_url)
    content_type, markdown = await fetch(body["content"]["markdown"]["url"])
    assert content_type == TYPES["markdown"]
    check_markdown(markdown.decode(), service.site.url)
    keys = sorted(o["Key"].rsplit(".", 1)[1] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == ["md", "png"]


async def test_content_over_the_bound_is_cut_with_a_warning(service: Service) -> None:
    body = await ok(service, "/content/long", format="text", extract="html", timeout=30)
    warning = next(w for w in body["warnings"] if w["code"] == "content_truncated")
    assert warning["details"] == {"kinds": ["html", "text"], "max_bytes": MAX_CONTENT_BYTES}
    for url in (body["url"], body["content"]["html"]["url"]):
        data = (await fetch(url))[1]
        assert MAX_CONTENT_BYTES - 4 < len(data) <= MAX_CONTENT_BYTES
        assert data.decode("utf-8").endswith(("long text", "é", " "))  # cut between characters
    small = await ok(service, "/content/long?mb=1", format="text")
    assert small["warnings"] == [] and small["bytes"] > 1_000_000


@pytest.mark.parametrize(("option", "value"), [
    ("full_page", True), ("selector", "h1"), ("clip", {"x": 0, "y": 0, "width": 10, "height": 10}),
    ("thumb_width", 100), ("thumb_fit", "cover"), ("quality", 50), ("omit_background", True),
    ("pdf_landscape", True), ("pdf_margin", "1in"),
])
async def test_image_options_with_a_content_format_are_refused_naming_both(
        service: Service, option: str, value: Any) -> None:
    response = await service.client.post("/v1/screenshot", headers=service.auth(),
                                         json={"url": service.site.url + "/paint", "format": "markdown", option: value})
    body = await response.json()
    assert response.status == 400 and set(body["error"]["details"]["fields"]) == {"format", option}, body


async def test_bad_extract_kinds_are_refused_naming_extract(service: Service) -> None:
    for bad in ("markdown,pdf", "png"):
        response = await service.shot("/paint", extract=bad)
        body = await response.json()
        assert response.status == 400 and list(body["error"]["details"]["fields"]) == ["extract"], body
    response = await service.client.post("/v1/screenshot", headers=service.auth(),
                                         json={"url": service.site.url + "/paint", "extract": "text"})
    assert response.status == 200  # one kind as a string, as in a query


async def test_cache_keys_on_extract_and_a_hit_returns_the_content(service: Service) -> None:
    first = await ok(service, extract="markdown", cache="true")
    hit = await ok(service, extract="markdown", cache="true")
    assert hit["cached"] is True and hit["content"] == first["content"]
    other = await ok(service, cache="true")
    assert other["cached"] is False and "content" not in other


async def test_a_job_extracts_content(service: Service) -> None:
    response = await service.client.post("/v1/jobs", headers=service.auth(), json={
        "url": service.site.url + "/content/article", "format": "markdown", "extract": ["text"]})
    assert response.status == 202, await response.text()
    job_id = (await response.json())["id"]
    job: dict[str, Any] = {}

    async def finished() -> bool:
        job.update(await (await service.client.get(f"/v1/jobs/{job_id}", headers=service.auth())).json())
        return job["status"] in ("succeeded", "failed")

    assert await wait_for(finished, 30)
    assert job["status"] == "succeeded", job
    check_markdown((await fetch(job["result"]["url"]))[1].decode(), service.site.url)
    assert "Main Title" in (await fetch(job["result"]["content"]["text"]["url"]))[1].decode()


async def test_the_cli_writes_the_content_beside_the_image(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    out = tmp_path / "page.png"
    code, stdout, stderr = await run_async("capture", test_site.url + "/content/article", "-o", str(out),
                                           "--extract", "markdown,text", "--config", cfg)
    assert code == 0, stderr
    assert image_of(out.read_bytes()).size == (1280, 800)
    check_markdown((tmp_path / "page.md").read_text(), test_site.url)
    assert "Main Title" in (tmp_path / "page.txt").read_text()
    assert json.loads(stdout)["content"]["markdown"]["url"] == (tmp_path / "page.md").as_uri()


async def test_the_client_and_a_signed_link_deliver_content(service: Service) -> None:
    base = str(service.client.make_url("")).rstrip("/")
    async with ScreenshotClient(base, service.key) as shots:
        markdown = await shots.screenshot(service.site.url + "/content/article", format="markdown",
                                          response_type="image")
        result = await shots.screenshot(service.site.url + "/content/article", extract=["html"])
    assert isinstance(markdown, bytes) and isinstance(result, dict)
    check_markdown(markdown.decode(), service.site.url)
    assert "<h1>Main Title</h1>" in (await fetch(result["content"]["html"]["url"]))[1].decode()
    record = await service.state.key_by_id(service.key_id)
    assert record is not None
    link = signed_url(base, record.id, record.signing_secret, service.site.url + "/content/article",
                      format="text", response_type="image")
    content_type, text = await fetch(link)
    assert content_type == TYPES["text"] and "Main Title" in text.decode()


async def test_a_pdf_and_a_full_page_carry_their_content_too(service: Service) -> None:
    pdf = await ok(service, format="pdf", extract="text")
    assert pdf["format"] == "pdf" and "Written by script" in (await fetch(pdf["content"]["text"]["url"]))[1].decode()
    full = await ok(service, full_page="true", extract="markdown")
    check_markdown((await fetch(full["content"]["markdown"]["url"]))[1].decode(), service.site.url)
