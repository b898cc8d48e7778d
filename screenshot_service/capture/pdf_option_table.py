"""The PDF group of the option table (option_table.py), declared apart to keep each module small:
the paper, margins, scale, pages, header and footer templates of SPEC §3.1."""

from __future__ import annotations

from dataclasses import dataclass

from . import parsers as parse
from .declaration import Conflict, option
from .option_vocabulary import MARGIN, PAPER, PDF, SINGLE_HEIGHT, SINGLE_RANGES, pdf_only
from .pdf_parsers import PAPER_FORMATS, page_ranges, template


@dataclass(frozen=True)
class PdfOptionTable:
    pdf_paper_format: str = option(
        "letter", parse.choice(*PAPER_FORMATS), PDF, "Paper size (`pdf_width` and `pdf_height` override it).",
        conflicts=pdf_only("pdf_paper_format"))
    pdf_width: str | None = option(
        None, PAPER, PDF, "Custom paper width, a CSS length (`210mm`, `8.5in`, `21cm`, `800px`, `12pt`); "
        "with `pdf_height`.", conflicts=pdf_only("pdf_width"))
    pdf_height: str | None = option(
        None, PAPER, PDF, "Custom paper height, a CSS length; with `pdf_width`.",
        conflicts=(*pdf_only("pdf_height"), Conflict("pdf_single_page", SINGLE_HEIGHT)))
    pdf_landscape: bool = option(False, parse.boolean, PDF, "Landscape paper.", conflicts=pdf_only("pdf_landscape"))
    pdf_margin: str = option(
        "0.4in", MARGIN, PDF, "All four margins, a CSS length; `pdf_margin_top` and the other sides override one.",
        conflicts=pdf_only("pdf_margin"))
    pdf_margin_top: str | None = option(
        None, MARGIN, PDF, "Top margin (the header's room).", conflicts=pdf_only("pdf_margin_top"))
    pdf_margin_right: str | None = option(
        None, MARGIN, PDF, "Right margin.", conflicts=pdf_only("pdf_margin_right"))
    pdf_margin_bottom: str | None = option(
        None, MARGIN, PDF, "Bottom margin (the footer's room).", conflicts=pdf_only("pdf_margin_bottom"))
    pdf_margin_left: str | None = option(
        None, MARGIN, PDF, "Left margin.", conflicts=pdf_only("pdf_margin_left"))
    pdf_print_background: bool = option(
        True, parse.boolean, PDF, "Print backgrounds and colours as on screen.",
        conflicts=pdf_only("pdf_print_background"))
    pdf_scale: float = option(
        1.0, parse.number(0.1, 2), PDF, "Scale of the page's rendering.", conflicts=pdf_only("pdf_scale"))
    pdf_page_ranges: str | None = option(
        None, page_ranges, PDF, "Pages to keep, e.g. `1-3,5`; a page past the last one is a 400.",
        conflicts=(*pdf_only("pdf_page_ranges"), Conflict("pdf_single_page", SINGLE_RANGES)))
    pdf_header_html: str | None = option(
        None, template, PDF,
        "Header on every page (HTML, at most 64 KB): elements with class `pageNumber`, `totalPages`, `date`, "
        "`title` or `url` are filled in; it loads nothing from the network (images only as `data:` URLs).",
        conflicts=pdf_only("pdf_header_html"))
    pdf_footer_html: str | None = option(
        None, template, PDF,
        "Footer on every page, like `pdf_header_html`.", conflicts=pdf_only("pdf_footer_html"))
    pdf_prefer_css_page_size: bool = option(
        True, parse.boolean, PDF, "A CSS `@page { size }` wins over the paper options.",
        conflicts=pdf_only("pdf_prefer_css_page_size"))
    pdf_single_page: bool = option(
        False, parse.boolean, PDF, "The whole document on one page as tall as its content (at most 200 in).",
        conflicts=pdf_only("pdf_single_page"))
    pdf_outline: bool = option(
        False, parse.boolean, PDF, "A document outline (bookmarks) from the headings.",
        conflicts=pdf_only("pdf_outline"))
    pdf_tagged: bool = option(
        False, parse.boolean, PDF, "A tagged (accessible) PDF.", conflicts=pdf_only("pdf_tagged"))
