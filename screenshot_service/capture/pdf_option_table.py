"""The PDF group of the option table (option_table.py), declared apart to keep each module small:
the paper, margins, scale, pages, header and footer templates of SPEC §3.1."""

from __future__ import annotations

from dataclasses import dataclass

from . import parsers as parse
from .declaration import Conflict, option
from .option_vocabulary import MARGIN, PAPER, PDF, PDF_ONLY, SINGLE_HEIGHT, SINGLE_RANGES
from .pdf_parsers import PAPER_FORMATS, page_ranges, template


@dataclass(frozen=True)
class PdfOptionTable:
    pdf_paper_format: str = option(
        "letter", parse.choice(*PAPER_FORMATS), PDF, "Paper size (`pdf_width` and `pdf_height` override it).",
        conflicts=PDF_ONLY)
    pdf_width: str | None = option(
        None, PAPER, PDF, "Custom paper width, a CSS length (`210mm`, `8.5in`, `21cm`, `800px`, `12pt`); "
        "with `pdf_height`.", conflicts=PDF_ONLY)
    pdf_height: str | None = option(
        None, PAPER, PDF, "Custom paper height, a CSS length; with `pdf_width`.",
        conflicts=(*PDF_ONLY, Conflict("pdf_single_page", SINGLE_HEIGHT)))
    pdf_landscape: bool = option(False, parse.boolean, PDF, "Landscape paper.", conflicts=PDF_ONLY)
    pdf_margin: str = option(
        "0.4in", MARGIN, PDF, "All four margins, a CSS length; `pdf_margin_top` and the other sides override one.",
        conflicts=PDF_ONLY)
    pdf_margin_top: str | None = option(
        None, MARGIN, PDF, "Top margin (the header's room).", conflicts=PDF_ONLY)
    pdf_margin_right: str | None = option(
        None, MARGIN, PDF, "Right margin.", conflicts=PDF_ONLY)
    pdf_margin_bottom: str | None = option(
        None, MARGIN, PDF, "Bottom margin (the footer's room).", conflicts=PDF_ONLY)
    pdf_margin_left: str | None = option(
        None, MARGIN, PDF, "Left margin.", conflicts=PDF_ONLY)
    pdf_print_background: bool = option(
        True, parse.boolean, PDF, "Print backgrounds and colours as on screen.",
        conflicts=PDF_ONLY)
    pdf_scale: float = option(
        1.0, parse.number(0.1, 2), PDF, "Scale of the page's rendering.", conflicts=PDF_ONLY)
    pdf_page_ranges: str | None = option(
        None, page_ranges, PDF, "Pages to keep, e.g. `1-3,5`; a page past the last one is a 400.",
        conflicts=(*PDF_ONLY, Conflict("pdf_single_page", SINGLE_RANGES)))
    pdf_header_html: str | None = option(
        None, template, PDF,
        "Header on every page (HTML, at most 64 KB): elements with class `pageNumber`, `totalPages`, `date`, "
        "`title` or `url` are filled in; it loads nothing from the network (images only as `data:` URLs).",
        conflicts=PDF_ONLY)
    pdf_footer_html: str | None = option(
        None, template, PDF,
        "Footer on every page, like `pdf_header_html`.", conflicts=PDF_ONLY)
    pdf_prefer_css_page_size: bool = option(
        True, parse.boolean, PDF, "A CSS `@page { size }` wins over the paper options.",
        conflicts=PDF_ONLY)
    pdf_single_page: bool = option(
        False, parse.boolean, PDF, "The whole document on one page as tall as its content (at most 200 in).",
        conflicts=PDF_ONLY)
    pdf_outline: bool = option(
        False, parse.boolean, PDF, "A document outline (bookmarks) from the headings.",
        conflicts=PDF_ONLY)
    pdf_tagged: bool = option(
        False, parse.boolean, PDF, "A tagged (accessible) PDF.", conflicts=PDF_ONLY)
