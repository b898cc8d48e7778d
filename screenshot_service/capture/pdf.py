"""Print the page as a PDF with the pdf_* options (SPEC §3.1), bounded in pages.

Chromium lays out and prints every page it is asked for: a page with ``@page { size: 3px }``
or megabytes of text would print tens of thousands.  So it is never asked for more than
``max_pages + 1`` pages (``pageRanges``: DevTools quietly stops at the document's end); one
more than the limit printed means the document is longer, a 422 ``pdf_too_many_pages``.

The same counting judges ``pdf_page_ranges``: Chromium prints the asked pages that exist, in
order and once each, so fewer pages than asked means a page past the end, a 400 on the field.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import ProtocolError
from ..errors import InvalidParameter, PdfTooManyPages
from .pdf_bound import ESTIMATE_SLACK, estimated_pages
from .pdf_paper import Sheet, sheet
from .pdf_parsers import MAX_PAPER_INCHES, PX_PER_INCH, page_spans
from .pdf_templates import EMPTY_TEMPLATE, check_templates

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

DEFAULT_MAX_PAGES = 1000  # [capture] max_pdf_pages
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


@dataclass(frozen=True)
class Printed:
    data: bytes
    pages: int
    clamped: bool = False  # pdf_single_page: content taller than the largest page was cut


def page_count(data: bytes) -> int:
    """Pages of a PDF as Chromium writes it (one uncompressed page object each)."""
    return len(_PAGE_OBJECT.findall(data))


async def print_pdf(session: CaptureSession, opts: CaptureOptions, *, max_pages: int = DEFAULT_MAX_PAGES) -> Printed:
    paper = sheet(opts)
    params: dict[str, Any] = {
        "printBackground": opts.pdf_print_background, "scale": opts.pdf_scale,
        "preferCSSPageSize": opts.pdf_prefer_css_page_size, "generateTaggedPDF": opts.pdf_tagged,
        "generateDocumentOutline": opts.pdf_outline, **paper.print_params(),
    }
    if opts.pdf_header_html is not None or opts.pdf_footer_html is not None:
        await check_templates(session, opts, paper)
        params.update(displayHeaderFooter=True, headerTemplate=opts.pdf_header_html or EMPTY_TEMPLATE,
                      footerTemplate=opts.pdf_footer_html or EMPTY_TEMPLATE)
    estimate, content = await estimated_pages(session, opts, paper)
    if opts.pdf_single_page:
        return await _single_page(session, opts, paper, params, content)
    if estimate > max_pages * ESTIMATE_SLACK:  # not even laid out for print: that alone takes too long
        raise PdfTooManyPages(f"the document would print to about {estimate} pages, more than {max_pages}",
                              details={"max_pages": max_pages})
    wanted = _wanted_pages(opts.pdf_page_ranges, max_pages + 1)
    params["pageRanges"] = _ranges_text(wanted)
    data = await _print(session, params, opts)
    pages = page_count(data)
    if pages > max_pages:
        raise PdfTooManyPages(
            f"the document prints to more than {max_pages} pages; choose some with pdf_page_ranges "
            f"(at most {max_pages})", details={"max_pages": max_pages})
    if opts.pdf_page_ranges and pages < _size(wanted):
        missing = _nth_page(wanted, pages)
        raise InvalidParameter.fields({"pdf_page_ranges": f"page {missing} is past the last page of the "
                                                          f"document (it has fewer than {missing} pages)"})
    return Printed(data, pages)


async def _single_page(session: CaptureSession, opts: CaptureOptions, paper: Sheet,
                       params: dict[str, Any], content: float) -> Printed:
    """One page as tall as the content (``content`` px, laid out at the paper's printable width)."""
    margins_y = paper.margins["top"] + paper.margins["bottom"]
    height = (content * opts.pdf_scale + 2) / PX_PER_INCH + margins_y  # 2 px: rounding in print layout
    clamped = height > MAX_PAPER_INCHES
    if clamped:
        cut = round((MAX_PAPER_INCHES - margins_y) * PX_PER_INCH / opts.pdf_scale)
        session.document.warn("clamped", f"the single page was cut at {cut} px of content (a PDF page is at "
                                         f"most {MAX_PAPER_INCHES:g} in tall)", {"height": cut})
    params.update(paperHeight=min(height, MAX_PAPER_INCHES), preferCSSPageSize=False, pageRanges="1")
    data = await _print(session, params, opts)
    return Printed(data, page_count(data), clamped=clamped)


async def _print(session: CaptureSession, params: dict[str, Any], opts: CaptureOptions) -> bytes:
    try:
        result = await session.page.send("Page.printToPDF", params)
    except ProtocolError as exc:
        if "exceeds page count" in str(exc) and opts.pdf_page_ranges:
            first = page_spans(opts.pdf_page_ranges)[0][0]
            raise InvalidParameter.fields({"pdf_page_ranges": f"page {first} is past the last page of the "
                                                              "document"}) from None
        raise
    data = result.get("data")
    if not isinstance(data, str):
        raise ProtocolError("Page.printToPDF answered without data")
    return base64.b64decode(data)


def _wanted_pages(ranges: str | None, limit: int) -> list[tuple[int, int]]:
    """The caller's pages (all by default), cut after ``limit`` of them."""
    spans = page_spans(ranges) if ranges else [(1, limit)]
    wanted: list[tuple[int, int]] = []
    left = limit
    for low, high in spans:
        if left <= 0:
            break
        high = min(high, low + left - 1)
        wanted.append((low, high))
        left -= high - low + 1
    return wanted


def _size(spans: list[tuple[int, int]]) -> int:
    return sum(high - low + 1 for low, high in spans)


def _nth_page(spans: list[tuple[int, int]], index: int) -> int:
    """The page number at position ``index`` (from 0) of the spans."""
    for low, high in spans:
        if index <= high - low:
            return low + index
        index -= high - low + 1
    return spans[-1][1]


def _ranges_text(spans: list[tuple[int, int]]) -> str:
    return ",".join(f"{low}-{high}" for low, high in spans)
