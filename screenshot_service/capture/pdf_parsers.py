"""Values of the pdf_* options (SPEC §3.1): paper sizes, CSS lengths, page ranges.

A length is kept as its canonical text (``210mm``, ``0.4in``) so that JSON, the cache
fingerprint and OpenAPI show what the caller wrote; ``inches`` converts it for
``Page.printToPDF``, which takes inches.  Page ranges are kept as their merged, sorted
text (``1-3,5``); ``page_spans`` reads them back.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from .scalar_parsers import Bad, described, text

PX_PER_INCH = 96.0  # CSS: 1in = 96px = 72pt = 2.54cm
_PER_INCH = {"in": 1.0, "px": PX_PER_INCH, "pt": 72.0, "cm": 2.54, "mm": 25.4}
# Paper sizes in inches, portrait (ledger is tabloid turned, as printers name it).
PAPER_FORMATS: dict[str, tuple[float, float]] = {
    "letter": (8.5, 11.0), "legal": (8.5, 14.0), "tabloid": (11.0, 17.0), "ledger": (17.0, 11.0),
    "a0": (841 / 25.4, 1189 / 25.4), "a1": (594 / 25.4, 841 / 25.4), "a2": (420 / 25.4, 594 / 25.4),
    "a3": (297 / 25.4, 420 / 25.4), "a4": (210 / 25.4, 297 / 25.4), "a5": (148 / 25.4, 210 / 25.4),
    "a6": (105 / 25.4, 148 / 25.4),
}
# A PDF page at most 200 in on a side: the largest that PDF readers (Acrobat's user space) display.
MAX_PAPER_INCHES = 200.0
MIN_PAPER_INCHES = 0.5
MAX_PAGE_NUMBER = 1_000_000
_LENGTH = re.compile(r"^(?:0|([0-9]{1,6}(?:\.[0-9]{1,4})?|\.[0-9]{1,4})(mm|cm|in|px|pt))$")
TEMPLATE_MAX_BYTES = 64 * 1024
# What Chromium's header and footer cannot hold: it renders templates without a network, and a
# stylesheet or font it is asked to fetch there fails the print and crashes the renderer.  Caught
# before the page loads: <link>, @import, a font from a URL other than data:, and CSS escapes in an
# at-rule (@\69mport) or a font rule (u\rl), in the text and with its character references decoded
# (an SVG <style> decodes &#64;import).  Images and backgrounds from URLs are harmless: they stay empty.
_TEMPLATE_FETCHES = re.compile(
    r"<link\b|@import|@[\w-]*\\|@font-face[^}]*(?:\\|url\(\s*(?![\s'\"]*data:))", re.IGNORECASE)
_RANGE = re.compile(r"^([0-9]{1,7})(?:-([0-9]{1,7}))?$")


def inches(length: str) -> float:
    """A canonical length (as the parsers below return it) in inches."""
    match = _LENGTH.fullmatch(length)
    if match is None or match.group(1) is None:
        return 0.0
    return float(match.group(1)) / _PER_INCH[match.group(2)]


def css_length(lo_inches: float, hi_inches: float) -> Any:
    """A CSS length in mm, cm, in, px or pt (``0`` alone may omit the unit), within the bounds;
    a JSON number is in px, as in CSS pixels everywhere else."""
    shape = "must be a CSS length with a unit: mm, cm, in, px or pt (like 210mm, 8.5in, 12pt)"

    def parse(value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e6:
            value = f"{value:.4f}".rstrip("0").rstrip(".") + "px"
        if not isinstance(value, str) or len(value) > 32:
            raise Bad(shape)
        text = value.strip().lower()
        match = _LENGTH.fullmatch(text)
        if match is None:
            raise Bad(shape)
        canonical = "0" if match.group(1) is None else f"{float(match.group(1)):g}{match.group(2)}"
        size = inches(canonical)
        if not lo_inches <= size <= hi_inches:
            raise Bad(f"must be from {_shown(lo_inches)} to {_shown(hi_inches)}, got {canonical}")
        return canonical

    return described(parse, {"type": ["string", "number"], "pattern": r"^(0|[0-9.]+(mm|cm|in|px|pt))$",
                             "examples": ["210mm", "8.5in", "0.4in"]})


def _shown(size: float) -> str:
    return f"{size:g}in" if size >= 0.1 or size == 0 else f"{size * 25.4:g}mm"


def template(value: Any) -> str:
    """A header or footer template: HTML of at most 64 KB that fetches nothing."""
    html = _template_text(value)
    found = _TEMPLATE_FETCHES.search(html) or _TEMPLATE_FETCHES.search(unescape(html))
    if found is not None:
        raise Bad(f"loads nothing from the network: {found.group(0).strip()[:40]!r} is not allowed; put styles "
                  "inline in <style> and fonts in data: URLs")
    return html


_template_text = text(TEMPLATE_MAX_BYTES, utf8_bytes=True)
described(template, {"type": "string", "maxLength": TEMPLATE_MAX_BYTES})


def page_ranges(value: Any) -> str:
    """``1-3,5``: pages (from 1) and inclusive ranges; returned merged and sorted."""
    shape = "must be pages and ranges like 1-3,5 (from 1, each range low-high)"
    if isinstance(value, int) and not isinstance(value, bool):  # one page, as JSON may give it
        value = str(value) if 0 <= value <= MAX_PAGE_NUMBER else "0"
    if not isinstance(value, str) or len(value) > 1024:
        raise Bad(shape)
    spans: list[tuple[int, int]] = []
    for part in value.replace(" ", "").split(","):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise Bad(shape)
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low < 1 or high > MAX_PAGE_NUMBER:
            raise Bad(f"pages are numbered from 1 to {MAX_PAGE_NUMBER}, got {part}")
        if low > high:
            raise Bad(f"the range {part} ends before it starts")
        spans.append((low, high))
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in _merged(spans))


def page_spans(ranges: str) -> list[tuple[int, int]]:
    """The canonical text of ``page_ranges`` as (first, last) pairs, sorted and disjoint."""
    spans = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        spans.append((int(low), int(high or low)))
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


described(page_ranges, {"type": "string", "pattern": r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$",
                        "examples": ["1-3,5"]})
