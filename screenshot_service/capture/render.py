"""Drive one page: prepare (emulation), navigate (and tidy the page), capture.  Knows no HTTP.

The caller owns the deadline (an ``asyncio.timeout`` around all three), so no
call here carries its own timeout (the driver bounds each call only as a backstop).
``capture`` takes the deadline only to size the time it spends revealing lazy
content of a full page.

``navigate`` runs ``prepare`` itself if it has not run in the capture's session (session.py),
so a caller that only calls ``navigate`` + ``capture`` still honours every option.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..browser.driver_errors import ProtocolError, ScriptError
from ..browser.page_driver import PageDriver
from ..errors import InvalidParameter, SelectorNotFound
from . import (
    actions,
    animations,
    blocking,
    bounds,
    checks,
    content,
    devices,
    emulation,
    facts,
    fullpage,
    interception,
    loading,
    readback,
    thumbnail,
)
from .content_options import CONTENT_FORMATS
from .options import CaptureOptions
from .pdf import DEFAULT_MAX_PAGES, print_pdf
from .session import CaptureSession

REVEAL_DEFAULT = 6.0  # seconds of lazy-content reveal when the caller gives no deadline
REVEAL_SHARE = 0.5  # ... else at most this share of the time left
BANNER_SETTLE = 0.3  # seconds for a consent banner to react to its accept button


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int  # pixels of the produced image (CSS px × device scale factor); for PDF the viewport
    height: int
    clamped: bool = False  # full page taller than max_height (or the format's limit) was cut
    blocked_requests: int = 0  # refused by the shot: egress proxy, ad/tracker lists, block_resources/block_requests
    page: facts.PageFacts = facts.PageFacts()
    warnings: tuple[facts.CaptureWarning, ...] = ()
    pages: int | None = None  # a PDF's page count
    metadata: dict[str, Any] | None = None  # with metadata=true (metadata.py, read by service.py)
    content: dict[str, bytes] = field(default_factory=dict)  # what ``extract`` asked for, by kind


_DEFAULTS = CaptureOptions()


async def prime(page: PageDriver) -> None:
    """A warm page's emulation for the default options, sent before any request arrives
    (the pool's context factory runs it): a capture with those options resends none of it."""
    await _emulate_screen(page, _DEFAULTS)


async def _emulate_screen(page: PageDriver, opts: CaptureOptions) -> None:
    await devices.emulate(page, opts)
    await page.send_state(
        "Emulation.setEmulatedMedia",
        {
            "media": opts.css_media,
            "features": [
                {"name": "prefers-color-scheme", "value": "dark" if opts.dark_mode else "light"},
                {"name": "prefers-reduced-motion", "value": "reduce" if opts.reduced_motion else "no-preference"},
            ]
        },
    )


async def prepare(session: CaptureSession, opts: CaptureOptions) -> None:
    """Everything that must hold before the first request: emulation, identity, blocking."""
    session.prepared = True
    page = session.page
    await _emulate_screen(page, opts)
    await emulation.emulate(page, opts)
    if opts.css or opts.js or opts.hide_selectors or opts.block_cookie_banners or opts.disable_animations:
        await page.set_bypass_csp(True)  # our style and script must run on pages with a strict CSP
    await interception.intercept(session, opts)  # headers to the target's origin; block_resources/requests
    if opts.cookies and opts.url:
        try:
            await page.send("Network.setCookies", {"cookies": [c.to_cdp(opts.url) for c in opts.cookies]})
        except ProtocolError as exc:
            raise InvalidParameter.fields({"cookies": f"rejected by the browser: {readback.first_line(exc)}"}) from None
    await blocking.apply_page_blocking(page, opts)


async def navigate(session: CaptureSession, opts: CaptureOptions, *, deadline: float | None = None) -> None:
    """Load the page and wait as ``wait_until`` says; ``deadline`` (loop time) bounds ``ready``.
    Navigations the page starts itself are followed until it holds still (loading.py)."""
    if not session.prepared:
        await prepare(session, opts)
    await loading.load(session, opts)
    await loading.steadily(session, opts, lambda: _settle(session, opts, deadline))
    if await actions.perform(session, opts):  # the actions took the page to another document
        await loading.steadily(session, opts, lambda: _settle(session, opts, deadline))


async def _settle(session: CaptureSession, opts: CaptureOptions, deadline: float | None) -> None:
    """What follows the load, on whichever document the page is on: run again on the next one."""
    page = session.page
    if opts.disable_animations:  # first now, so that frozen animations neither delay ready nor hide the selector
        await animations.freeze(page)
    if opts.wait_for_selector:
        await actions.check_selector(page, "wait_for_selector", opts.wait_for_selector)
        await page.wait_for_selector(opts.wait_for_selector)
    if opts.wait_until == "ready":
        await checks.wait_ready(session, deadline)
    await _tidy(session, opts)
    if opts.disable_animations:  # again: what the page started since, and what the caller's js did
        await animations.freeze(page, style=False)
    if opts.delay:
        await asyncio.sleep(opts.delay / 1000)


async def capture(session: CaptureSession, opts: CaptureOptions, *, deadline: float | None = None,
                  max_pdf_pages: int = DEFAULT_MAX_PAGES) -> Rendered:
    """The image (or PDF, at most ``max_pdf_pages``).  ``deadline`` (loop time) bounds the full-page
    reveal.  A page that navigates while it is captured (even when no step failed for it) is
    followed, settled and captured again, as many times as a capture follows navigations."""
    settled = session.documents.judged  # the document navigate settled

    async def attempt() -> Rendered:
        nonlocal settled
        if session.documents.judged != settled:  # the page went on since: a new document to settle
            await _settle(session, opts, deadline)
            settled = session.documents.judged
        shot = _capture(session, opts, deadline, max_pdf_pages)
        if not opts.extract or opts.format in CONTENT_FORMATS:  # a content format reads them with its own
            return await shot
        rendered, extracted = await content.beside(shot, session, opts)  # the document the image shows
        return dataclasses.replace(rendered, content=extracted, warnings=session.document.sorted_warnings())

    return await loading.steadily(session, opts, attempt)


async def _capture(session: CaptureSession, opts: CaptureOptions, deadline: float | None,
                   max_pdf_pages: int) -> Rendered:
    page = session.page
    if opts.omit_background:
        await page.send("Emulation.setDefaultBackgroundColorOverride", {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})
    if opts.format in CONTENT_FORMATS:  # the content alone: the viewport's size, as for a PDF
        data, extracted = await content.read_with(session, opts.format, opts.extract)
        page_facts = await checks.before_capture(session, opts)
        return dataclasses.replace(_rendered(session, data, opts.width, opts.height, False, page_facts),
                                   content=extracted)
    if opts.format == "pdf":
        if opts.disable_animations:
            await animations.freeze(page, style=False)
        page_facts = await checks.before_capture(session, opts)
        printed = await print_pdf(session, opts, max_pages=max_pdf_pages)
        return _rendered(session, printed.data, opts.width, opts.height, printed.clamped, page_facts, printed.pages)
    clamped = False
    area: tuple[float, float, float, float] | None = None  # what was captured; None: the viewport, as is
    if opts.full_page:
        await fullpage.reveal(page, session.network, opts, _reveal_budget(deadline))
        if opts.disable_animations:  # what the reveal scrolled into view may have started animating
            await animations.freeze(page, style=False)
        page_facts = await checks.before_capture(session, opts)
        shot = await thumbnail.capture_full_page(page, opts)
        data, clamped, area = shot.data, shot.clamped, shot.area
    else:
        if opts.disable_animations:
            await animations.freeze(page, style=False)
        if opts.clip is None and not opts.selector and not thumbnail.requested(opts):
            # The page's checks and the shot in one round trip: the renderer answers the script
            # before it paints the frame the screenshot waits for, so they see the same page.
            page_facts, shot_result = await asyncio.gather(
                checks.before_capture(session, opts), page.send("Page.captureScreenshot", fullpage.shot_params(opts)))
            data = base64.b64decode(shot_result["data"])
        else:
            page_facts = await checks.before_capture(session, opts)
            chosen = opts.clip or await (_element_box(page, opts.selector) if opts.selector
                                         else thumbnail.viewport_area(page, opts))
            if opts.selector:  # a clip was checked with the options; an element's size is known only now
                bounds.check_area("selector", chosen[2], chosen[3], opts.device_scale_factor, opts.format)
            shot = await thumbnail.capture_area(page, opts, chosen)
            data, clamped, area = shot.data, shot.clamped, shot.area
    width, height = fullpage.image_size(data)
    await checks.after_capture(session, opts, data, area, clamped=clamped, height=height)
    return _rendered(session, data, width, height, clamped, page_facts)


def _rendered(session: CaptureSession, data: bytes, width: int, height: int, clamped: bool,
              page_facts: facts.PageFacts, pages: int | None = None) -> Rendered:
    return Rendered(data, width, height, clamped, session.blocked_requests, page_facts,
                    session.document.sorted_warnings(), pages)


def _reveal_budget(deadline: float | None) -> float:
    if deadline is None:
        return REVEAL_DEFAULT
    return max(0.5, (deadline - asyncio.get_running_loop().time()) * REVEAL_SHARE)


# -- tidying -----------------------------------------------------------------------------

_BANNERS_JS = """(selectors) => {
  let clicked = 0;
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      const box = el.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden') { el.click(); clicked++; }
    }
  }
  return clicked;
}"""


async def _tidy(session: CaptureSession, opts: CaptureOptions) -> None:
    """Cookie banners, hidden elements, caller CSS and JS — in that order, so the caller's word is last.
    The caller's js runs once: on the next document the page (or that js) navigates to, only the rest."""
    page = session.page
    if opts.block_cookie_banners:
        if await page.evaluate(_BANNERS_JS, list(blocking.cookie_accept_selectors())):  # a truth test cannot fail
            await asyncio.sleep(BANNER_SETTLE)
        await page.add_style_tag(blocking.cookie_banner_css())
    if opts.hide_selectors:
        for selector in opts.hide_selectors:
            await actions.check_selector(page, "hide_selectors", selector)
        rules = "\n".join(f"{s} {{ display: none !important; }}" for s in opts.hide_selectors)
        await page.add_style_tag(rules)
    if opts.css:
        await page.add_style_tag(opts.css)
    if opts.js and not session.ran_js:
        session.ran_js = True
        await _run_js(page, opts.js)


async def _run_js(page: PageDriver, source: str) -> None:
    result = await page.send(
        "Runtime.evaluate",
        {"expression": source, "awaitPromise": True, "returnByValue": False, "userGesture": True},
    )
    details = result.get("exceptionDetails")
    if details:
        raise InvalidParameter.fields({"js": f"threw {readback.thrown(details)}"})


_BOX_JS = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  el.scrollIntoView({block: 'nearest', inline: 'nearest'});
  const r = el.getBoundingClientRect();
  const left = Math.floor(r.left + window.scrollX), top = Math.floor(r.top + window.scrollY);
  return [left, top, Math.ceil(r.right + window.scrollX) - left, Math.ceil(r.bottom + window.scrollY) - top];
}"""


async def _element_box(page: PageDriver, selector: str | None) -> tuple[int, int, int, int]:
    """The element's box in page coordinates, whole CSS px (so the image is exactly its size)."""
    assert selector is not None
    await actions.check_selector(page, "selector", selector)
    try:
        answer = await page.evaluate(_BOX_JS, selector)
        if answer is None:
            raise SelectorNotFound(f"no element matches {selector!r}", details={"selector": selector})
        x, y, width, height = readback.integers(answer, 4, low=-readback.COORDINATE, high=readback.COORDINATE)
    except ScriptError as exc:
        raise InvalidParameter.fields({"selector": readback.first_line(exc)}) from None
    if width <= 0 or height <= 0:
        raise SelectorNotFound(f"the element matching {selector!r} has no visible box", details={"selector": selector})
    return max(0, x), max(0, y), width, height
