"""How many pages a document would print to, estimated before Chromium is asked to print it.

Chromium paginates the whole document whatever pages it is asked for, and that work grows
faster than the page count: 2,500 pages of 30 px took it over 30 s.  So before printing, the
document's area at the viewport (width x scroll height) is divided by the printable area of a
page, or counted in forced breaks (one page more than breaks), whichever is more; a document estimated at more than ``ESTIMATE_SLACK``
times the limit is refused without printing.  Below that, the print itself counts exactly
(pdf.py).  A CSS ``@page { size }`` the page declares (and that ``pdf_prefer_css_page_size``
lets win) is the paper instead.  Text wraps worse in a narrow column than the area says, so a
page under half the viewport's width (and a single page, which needs its height) is measured
at the printable width itself: a relayout the common paper sizes do not pay.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import ProtocolError, ScriptError
from .pdf_paper import Sheet
from .pdf_parsers import PX_PER_INCH

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

ESTIMATE_SLACK = 2  # an estimate is refused only this far over the limit: it may err either way
_SCANNED_ELEMENTS = 50_000  # elements whose breaks are counted; more are extrapolated from these

# The smallest page a CSS @page rule sets (width, height in px), or null.
_CSS_PAGE_JS = """() => {
  const units = {px: 1, in: 96, cm: 96 / 2.54, mm: 96 / 25.4, pt: 96 / 72, pc: 16};
  let found = null;
  for (const sheet of Array.from(document.styleSheets)) {
    let rules = [];
    try { rules = Array.from(sheet.cssRules); } catch (e) { continue; }
    for (const rule of rules) {
      const size = rule instanceof CSSPageRule ? rule.style.getPropertyValue('size') : '';
      const lengths = (size.match(/[0-9.]+(px|in|cm|mm|pt|pc)/g) || [])
        .map(l => parseFloat(l) * units[l.match(/[a-z]+$/)[0]]);
      if (!lengths.length) continue;
      const page = [lengths[0], lengths.length > 1 ? lengths[1] : lengths[0]];
      if (!found || page[0] * page[1] < found[0] * found[1]) found = page;
    }
  }
  return found;
}"""
# The document's height at the current viewport, and its forced page breaks.
_EXTENT_JS = """(scanned) => {
  const root = document.documentElement, body = document.body;
  const height = Math.max(root ? root.scrollHeight : 0, body ? body.scrollHeight : 0);
  const all = document.getElementsByTagName('*');
  const forced = new Set(['page', 'always', 'left', 'right', 'recto', 'verso']);
  let breaks = 0;
  const count = Math.min(all.length, scanned);
  for (let i = 0; i < count; i++) {
    const style = getComputedStyle(all[i]);
    if (forced.has(style.breakBefore)) breaks++;
    if (forced.has(style.breakAfter)) breaks++;
  }
  return [height, count ? Math.round(breaks * all.length / count) : 0];
}"""


async def estimated_pages(session: CaptureSession, opts: CaptureOptions, paper: Sheet) -> tuple[int, float]:
    """(pages the document would print to, about; its height in CSS px at the printable width,
    measured when the page is narrow or ``pdf_single_page`` needs it, else estimated from its area).

    May leave the viewport at the printable width, which only the print reads after this.
    """
    page = session.page
    width = paper.width * PX_PER_INCH - paper.margin_px("left") - paper.margin_px("right")
    height = paper.height * PX_PER_INCH - paper.margin_px("top") - paper.margin_px("bottom")
    try:
        css_page: Any = await page.evaluate(_CSS_PAGE_JS) if opts.pdf_prefer_css_page_size else None
        if _is_size(css_page):
            width, height = float(css_page[0]), float(css_page[1])
        width, height = max(1.0, width / opts.pdf_scale), max(1.0, height / opts.pdf_scale)
        viewport = float(opts.width)
        if opts.pdf_single_page or width < viewport / 2:
            viewport = float(max(1, round(width)))
            await page.send_state("Emulation.setDeviceMetricsOverride", {
                "width": int(viewport), "height": opts.height, "deviceScaleFactor": opts.device_scale_factor,
                "mobile": False})
        extent = await page.evaluate(_EXTENT_JS, _SCANNED_ELEMENTS)
    except (ScriptError, ProtocolError):
        return 0, 0.0  # a page that breaks the measurement is printed, and counted then
    if not _is_size(extent):
        return 0, 0.0
    area, breaks = float(extent[0]) * viewport, int(extent[1])
    return max(math.ceil(area / (width * height)), breaks + 1), area / width


def _is_size(value: object) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value))
