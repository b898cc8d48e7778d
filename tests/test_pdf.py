"""PDF options (SPEC §3.1): real PDFs printed by Chromium, read back with pypdf."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pytest
from pypdf import PdfReader

from screenshot_service.capture.options import CaptureOptions
from screenshot_service.errors import InvalidParameter
from tests.conftest import Service

# Five pages, each starting with its name.
FIVE_PAGES = ("<style>section { break-after: page; font: 20px sans-serif }</style>"
              + "".join(f"<section>PAGE-{n}</section>" for n in range(1, 6)))


async def pdf(service: Service, **options: Any) -> tuple[dict[str, Any], PdfReader]:
    """The JSON result and the PDF of one capture."""
    options.setdefault("html", FIVE_PAGES)
    response = await service.client.post("/v1/screenshot", headers=service.auth(),
                                         json={"format": "pdf", "response_type": "base64", **options})
    body = await response.json()
    assert response.status == 200, body
    return body, PdfReader(io.BytesIO(base64.b64decode(body["image_base64"])))


async def refused(service: Service, **options: Any) -> dict[str, Any]:
    response = await service.client.post("/v1/screenshot", headers=service.auth(), json=options)
    body = await response.json()
    assert response.status == 400, body
    return body["error"]


def size_pt(reader: PdfReader, index: int = 0) -> tuple[float, float]:
    """The page's size in points, to the point (Chromium rounds paper to its device units)."""
    box = reader.pages[index].mediabox
    return round(float(box.width)), round(float(box.height))


def texts(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


async def test_paper_format_landscape_and_custom_sizes(service: Service) -> None:
    body, default = await pdf(service)
    assert body["pages"] == len(default.pages) == 5 and size_pt(default) == (612, 792)  # Letter, as before
    _, a4 = await pdf(service, pdf_paper_format="a4")
    assert size_pt(a4) in {(595, 842), (596, 842)}  # 210 x 297 mm
    _, landscape = await pdf(service, pdf_paper_format="letter", pdf_landscape=True)
    assert size_pt(landscape) == (792, 612)
    _, custom = await pdf(service, pdf_width="100mm", pdf_height="4in", pdf_paper_format="a3")
    assert size_pt(custom) in {(283, 288), (284, 288)}  # 100 mm x 4 in


async def test_footer_numbers_the_pages_and_json_counts_them(service: Service) -> None:
    footer = "<div style='font-size:10px'>Page <span class=pageNumber></span> / <span class=totalPages></span></div>"
    body, reader = await pdf(service, pdf_paper_format="a4", pdf_margin="20mm", pdf_footer_html=footer)
    assert body["pages"] == 5 and body["warnings"] == []
    pages = texts(reader)
    assert "Page 1 / 5" in pages[0] and "Page 5 / 5" in pages[4], pages
    assert "PAGE-3" in pages[2]


async def test_page_ranges_keep_those_pages_and_refuse_pages_past_the_end(service: Service) -> None:
    body, reader = await pdf(service, pdf_page_ranges="5,2-3")
    assert body["pages"] == 3
    assert [re.search(r"PAGE-\d", text).group(0) for text in texts(reader)] == ["PAGE-2", "PAGE-3", "PAGE-5"]  # type: ignore[union-attr]
    for past in ("4-6", "9"):
        error = await refused(service, html=FIVE_PAGES, format="pdf", pdf_page_ranges=past)
        assert list(error["details"]["fields"]) == ["pdf_page_ranges"], error
        assert "past the last page" in error["details"]["fields"]["pdf_page_ranges"]


async def test_outline_and_tagged(service: Service) -> None:
    html = "<h1>Invoice</h1><p>a</p><h2>Lines</h2><p style='break-before:page'>b</p><h2>Totals</h2>"
    _, plain = await pdf(service, html=html)
    assert plain.outline == [] and "/StructTreeRoot" not in plain.trailer["/Root"]
    _, outlined = await pdf(service, html=html, pdf_outline=True, pdf_tagged=True)
    titles = [item.title if hasattr(item, "title") else [sub.title for sub in item] for item in outlined.outline]
    assert titles == ["Invoice", ["Lines", "Totals"]]
    assert "/StructTreeRoot" in outlined.trailer["/Root"]


RED_FILL = re.compile(rb"(?<![0-9.])0?\.78\d* 0 0 rg")  # rgb(200, 0, 0) as a PDF fill colour


async def test_print_background_fills_the_background_colour_only_when_asked(service: Service) -> None:
    html = "<style>html { background: rgb(200, 0, 0) }</style><p>x</p>"
    _, painted = await pdf(service, html=html)  # pdf_print_background defaults to true
    _, plain = await pdf(service, html=html, pdf_print_background=False)
    assert RED_FILL.search(painted.pages[0].get_contents().get_data())  # type: ignore[union-attr]
    assert not RED_FILL.search(plain.pages[0].get_contents().get_data())  # type: ignore[union-attr]


async def test_single_page_holds_the_whole_document(service: Service) -> None:
    tall = "<body style='margin:0'><div style='height:3000px;background:#ccc'>top</div><p>END-OF-DOC</p></body>"
    body, reader = await pdf(service, html=tall, pdf_single_page=True, pdf_margin="0")
    assert body["pages"] == len(reader.pages) == 1
    assert "END-OF-DOC" in reader.pages[0].extract_text()
    assert size_pt(reader)[1] >= 3000 * 0.75


async def test_a_template_taller_than_its_margin_is_reported(service: Service) -> None:
    tall = "<div style='height:150px;font-size:10px'>letterhead</div>"
    body, _ = await pdf(service, pdf_header_html=tall, pdf_margin="0.4in")
    assert body["warnings"] == [{"code": "pdf_header_clipped", "message": body["warnings"][0]["message"],
                                 "details": {"part": "header", "needed": 150 + 20, "margin": 38.4}}]
    body, _ = await pdf(service, pdf_footer_html=tall, pdf_margin_bottom="2in")
    assert body["warnings"] == []
    # Side by side, as Chromium lays a template out: as tall as the taller one, not their sum.
    body, _ = await pdf(service, pdf_footer_html="<div style='height:50px'>a</div><div style='height:60px'>b</div>",
                        pdf_margin_bottom="85px")
    assert body["warnings"] == []
    body, _ = await pdf(service, pdf_footer_html="<div style='height:70px'>a</div>", pdf_margin_bottom="85px")
    assert body["warnings"][0]["details"] == {"part": "footer", "needed": 90, "margin": 85}


async def test_templates_load_nothing_from_the_network(service: Service) -> None:
    site = service.site.url
    html = f"<p>body</p><img src='{site}/in-page.png'>"
    header = (f"<div style='font-size:10px'><img src='{site}/in-header.png'>"
              f"<div style='background:url({site}/header-bg.png)'>H</div></div>")
    await pdf(service, html=html, pdf_header_html=header, pdf_footer_html=f"<img srcset='{site}/in-footer.png'>",
              pdf_margin="1in", wait_until="networkidle0")
    assert service.site.log.count("/in-page.png") >= 1  # the page itself does load it
    assert not [hit for hit in service.site.log.hits if hit.startswith(("/in-header", "/header-bg", "/in-footer"))]
    for fetching in (f"<link rel=stylesheet href='{site}/x.css'>", "<style>@import url(x.css)</style>",
                     "<style>@font-face { font-family: f; src: url(https://e.com/f.woff) }</style>",
                     "<style>@\\69mport 'x.css';</style>", "<svg><style>&#64;import url(x.css);</style></svg>",
                     "<style>@font-face { font-family: f; src: u\\rl(https://e.com/f.woff) }</style>"):
        error = await refused(service, html="<p>x</p>", format="pdf", pdf_footer_html=fetching)
        assert list(error["details"]["fields"]) == ["pdf_footer_html"], error


async def test_printing_stops_at_max_pdf_pages(make_service: Any) -> None:
    service = await make_service(capture={"max_pdf_pages": 3})
    response = await service.client.post("/v1/screenshot", headers=service.auth(),
                                         json={"html": FIVE_PAGES, "format": "pdf"})
    body = await response.json()
    assert response.status == 422 and body["error"]["code"] == "pdf_too_many_pages", body
    assert body["error"]["details"] == {"max_pages": 3}
    # Tiny CSS pages and many words: tens of thousands of pages, never printed.
    tiny = "<style>@page { size: 30px 30px; margin: 0 }</style>" + "<span>word </span>" * 5000
    response = await service.client.post("/v1/screenshot", headers=service.auth(), json={"html": tiny, "format": "pdf"})
    assert response.status == 422, await response.text()
    body, reader = await pdf(service, pdf_page_ranges="2-4")
    assert body["pages"] == 3 and "PAGE-4" in reader.pages[2].extract_text()
    usage = await (await service.client.get("/v1/usage", headers=service.auth())).json()
    assert usage["quota"]["used"] == 1  # the refused prints were not charged


REFUSALS: list[tuple[dict[str, Any], set[str]]] = [
    ({"pdf_landscape": True}, {"pdf_landscape", "format"}),  # png by default
    ({"format": "jpeg", "pdf_print_background": False}, {"pdf_print_background", "format"}),
    ({"format": "webp", "pdf_scale": 1}, {"pdf_scale", "format"}),
    ({"format": "pdf", "pdf_width": "210mm"}, {"pdf_width", "pdf_height"}),
    ({"format": "pdf", "pdf_width": "210furlongs", "pdf_height": "1in"}, {"pdf_width"}),
    ({"format": "pdf", "pdf_width": "300in", "pdf_height": "1in"}, {"pdf_width"}),
    ({"format": "pdf", "pdf_margin": -10}, {"pdf_margin"}),
    ({"format": "pdf", "pdf_margin": "10"}, {"pdf_margin"}),
    ({"format": "pdf", "pdf_scale": 2.5}, {"pdf_scale"}),
    ({"format": "pdf", "pdf_paper_format": "a7"}, {"pdf_paper_format"}),
    ({"format": "pdf", "pdf_page_ranges": "3-1"}, {"pdf_page_ranges"}),
    ({"format": "pdf", "pdf_page_ranges": "0"}, {"pdf_page_ranges"}),
    ({"format": "pdf", "pdf_page_ranges": "1-2", "pdf_single_page": True}, {"pdf_page_ranges", "pdf_single_page"}),
    ({"format": "pdf", "pdf_height": "5in", "pdf_width": "5in", "pdf_single_page": True},
     {"pdf_height", "pdf_single_page"}),
    ({"format": "pdf", "pdf_header_html": "x" * (64 * 1024 + 1)}, {"pdf_header_html"}),
    ({"format": "pdf", "pdf_margin_top": "6in", "pdf_margin_bottom": "5in"}, {"pdf_margin_top", "pdf_margin_bottom"}),
    ({"format": "pdf", "pdf_margin": "5in"}, {"pdf_margin"}),
]


@pytest.mark.parametrize(("options", "fields"), REFUSALS, ids=lambda v: ",".join(sorted(v)) if isinstance(v, set) else None)
def test_each_refusal_names_its_fields(options: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(InvalidParameter) as caught:
        CaptureOptions.from_json({"html": "<p>x</p>", **options})
    assert set(caught.value.details["fields"]) == fields


def test_query_strings_take_the_same_values() -> None:
    opts = CaptureOptions.from_query({"url": "https://e.com", "format": "pdf", "pdf_width": "21CM",
                                      "pdf_height": "8.5in", "pdf_page_ranges": "5, 1-3,2", "pdf_landscape": "1"})
    assert (opts.pdf_width, opts.pdf_height, opts.pdf_page_ranges, opts.pdf_landscape) == ("21cm", "8.5in", "1-3,5", True)
    assert opts.pdf_margin == "0.4in" and opts.pdf_prefer_css_page_size and opts.pdf_print_background
    assert CaptureOptions.from_json({"html": "x", "format": "pdf", "pdf_margin": 48, "pdf_margin_top": 0}).pdf_margin == "48px"


async def test_a_cached_pdf_still_says_its_pages(service: Service) -> None:
    first, _ = await pdf(service, cache=True, pdf_page_ranges="1-2")
    again, reader = await pdf(service, cache=True, pdf_page_ranges="1-2")
    assert (first["cached"], again["cached"]) == (False, True)
    assert first["pages"] == again["pages"] == len(reader.pages) == 2
    other, _ = await pdf(service, cache=True, pdf_page_ranges="1-3")  # the options are part of the fingerprint
    assert other["cached"] is False and other["pages"] == 3
