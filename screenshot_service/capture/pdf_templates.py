"""Header and footer templates: measured against their margins (warning ``pdf_header_clipped``).

Chromium draws a template in the page's margin and says nothing when it does not fit: what is
taller runs into the page's content (or, in other versions, is cut off).  Each
template is laid out here at the paper's width in a scratch frame of the page, and its height
compared with the margin it gets.  The frame runs no script and loads nothing (a
Content-Security-Policy allowing only inline styles and data: images and fonts, before the
template; refresh and CSP meta tags of the template neutralised), so measuring a template
sends no request a print would not.  The frame is removed after.

A page that breaks the measurement (it may replace the DOM's functions) only loses the warning.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import ProtocolError, ScriptError
from .pdf_paper import Sheet
from .pdf_parsers import PX_PER_INCH

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

MEASURE_BOUND_MS = 2000
EMPTY_TEMPLATE = "<span></span>"  # a side without a template: Chromium's default shows date and title
# Chromium 156 lays a template out in a flex row (side by side) with a 1 px default font, and
# draws the header from 20 px below the page's top edge, the footer up to 20 px above its bottom
# (read from the PDFs it prints): the scratch frame does the same, and the inset counts as needed.
TEMPLATE_INSET_PX = 20
_SCRATCH_HEAD = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                 "img-src data:; font-src data:; style-src 'unsafe-inline'\">"
                 "<style>html, body { margin: 0; padding: 0; height: auto; } html { font-size: 1px; } "
                 "body { display: flex; }</style>")
_EQUIV = re.compile(r"http-equiv", re.IGNORECASE)
# A frame that never loads (the page removed it, or blocks frames) is given up after a bound.
_MEASURE_JS = """(documents, width, bound) => Promise.all(documents.map(html => new Promise(resolve => {
  const frame = document.createElement('iframe');
  const timer = setTimeout(() => { frame.remove(); resolve(-1); }, bound);
  frame.setAttribute('sandbox', 'allow-same-origin');
  frame.setAttribute('aria-hidden', 'true');
  frame.style.cssText = 'position:fixed;left:-100000px;top:0;border:0;height:10px;visibility:hidden;width:'
    + width + 'px';
  frame.onload = () => {
    clearTimeout(timer);
    const root = frame.contentDocument && frame.contentDocument.documentElement;
    const height = root ? Math.max(root.scrollHeight, root.getBoundingClientRect().height) : -1;
    frame.remove();
    resolve(height);
  };
  frame.srcdoc = html;
  (document.body || document.documentElement).appendChild(frame);
})))"""


async def check_templates(session: CaptureSession, opts: CaptureOptions, paper: Sheet) -> None:
    """Warn ``pdf_header_clipped`` for each template taller than its margin."""
    parts = [(part, template, side) for part, template, side in (
        ("header", opts.pdf_header_html, "top"), ("footer", opts.pdf_footer_html, "bottom")) if template]
    if not parts:
        return
    documents = [_SCRATCH_HEAD + _EQUIV.sub("data-neutralised", template) for _, template, _ in parts]
    width = max(1, round(paper.width * PX_PER_INCH))
    try:
        heights: Any = await session.page.evaluate(_MEASURE_JS, documents, width, MEASURE_BOUND_MS)
    except (ScriptError, ProtocolError):
        return
    if not isinstance(heights, list) or len(heights) != len(parts):
        return
    for (part, _, side), height in zip(parts, heights, strict=True):
        if not isinstance(height, int | float) or isinstance(height, bool) or height < 0:
            continue
        margin = paper.margin_px(side)
        if height + TEMPLATE_INSET_PX > margin + 0.5:
            needed = math.ceil(height) + TEMPLATE_INSET_PX
            session.document.warn(
                "pdf_header_clipped",
                f"the {part} template is {needed} px tall but pdf_margin_{side} gives it {margin:g} px: "
                f"what does not fit runs into the page's content; raise the margin or shrink the {part}",
                {"part": part, "needed": needed, "margin": round(margin, 2)})
