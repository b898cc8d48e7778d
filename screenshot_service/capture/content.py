"""The page's content as the capture delivers it (SPEC §3.2): html, markdown and text.

Read in one script in the service's isolated world, with the shot or right after it (beside), so it is the
document the image shows.  ``html`` is the DOM as scripts (and the caller's js) left it;
``text`` is what a reader sees (``innerText``).  For ``markdown`` the page decides what is
rendered, which only it can (computed styles): it hands over a copy of the body without
scripts, styles, embedded objects and elements that are not rendered (``display: none``,
the ``hidden`` attribute, text under ``visibility: hidden``, ``aria-hidden="true"``
decoration), with links and images made absolute; markdown.py converts that copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from . import readback
from .content_options import EXTRACT_KINDS, MAX_CONTENT_BYTES
from .markdown import to_markdown

if TYPE_CHECKING:
    from .options import CaptureOptions
    from .session import CaptureSession

T = TypeVar("T")

# Characters read back per kind: a character is 1 to 4 UTF-8 bytes, so cut below this is never short.
_READ_CHARS = MAX_CONTENT_BYTES + 1

_CONTENT_JS = """(kinds, limit) => {
  // Never more than a little over the bound crosses the protocol: Python cuts at the byte.
  const out = {};
  if (kinds.includes('html')) {
    out.html = ('<!doctype html>' + document.documentElement.outerHTML).slice(0, limit);
  }
  if (kinds.includes('text')) out.text = (document.body ? document.body.innerText : '').slice(0, limit);
  if (!kinds.includes('markdown')) return out;
  const DROP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'LINK', 'META', 'IFRAME', 'FRAME',
                        'OBJECT', 'EMBED', 'CANVAS', 'SVG', 'MATH', 'SOURCE', 'TRACK']);
  let budget = limit;
  const copy = (el) => {
    const style = getComputedStyle(el);
    if (style.display === 'none' || el.getAttribute('aria-hidden') === 'true') return null;
    const clone = el.cloneNode(false);
    if (clone.tagName === 'A' && el.hasAttribute('href')) clone.setAttribute('href', el.href);
    if (clone.tagName === 'IMG') {
      clone.setAttribute('src', el.currentSrc || el.src);
      clone.removeAttribute('srcset');
    }
    const seen = style.visibility === 'visible';
    for (const child of el.childNodes) {
      if (budget <= 0) break;
      if (child.nodeType === Node.TEXT_NODE) {
        if (seen) { clone.appendChild(document.createTextNode(child.data)); budget -= child.data.length; }
      } else if (child.nodeType === Node.ELEMENT_NODE && !DROP.has(child.tagName.toUpperCase())) {
        const kept = copy(child);
        if (kept) clone.appendChild(kept);
      }
    }
    return clone;
  };
  const body = document.body ? copy(document.body) : null;
  const markup = body ? body.innerHTML : '';
  out.markdown = markup.slice(0, 4 * limit);  // the text's bound, and room for its tags
  out.markdown_cut = budget <= 0 || markup.length > 4 * limit;
  return out;
}"""


async def read(session: CaptureSession, kinds: tuple[str, ...]) -> dict[str, bytes]:
    """Each of ``kinds`` as UTF-8, at most MAX_CONTENT_BYTES each (a longer one is cut at a
    character boundary, with the warning ``content_truncated`` naming the kinds cut)."""
    answer = readback.record(await session.page.evaluate(_CONTENT_JS, list(kinds), _READ_CHARS), (),
                             what="content")
    cut: list[str] = []
    content: dict[str, bytes] = {}
    for kind in kinds:
        value = readback.text(answer.get(kind, ""), limit=_READ_CHARS * 4, what=kind)
        if kind == "markdown":
            value = await asyncio.to_thread(to_markdown, value)
        data, was_cut = _bounded(value)
        if was_cut or (kind == "markdown" and answer.get("markdown_cut") is True):
            cut.append(kind)
        content[kind] = data
    if cut:
        session.document.warn("content_truncated", f"{', '.join(cut)} cut at {MAX_CONTENT_BYTES} bytes",
                              {"kinds": cut, "max_bytes": MAX_CONTENT_BYTES})
    return content


async def read_with(session: CaptureSession, fmt: str, extract: tuple[str, ...]) -> tuple[bytes, dict[str, bytes]]:
    """A content format's document, and what ``extract`` asks for beside it, in one reading."""
    content = await read(session, tuple(kind for kind in EXTRACT_KINDS if kind == fmt or kind in extract))
    return content[fmt], {kind: content[kind] for kind in extract}


async def beside(shot: Awaitable[T], session: CaptureSession, opts: CaptureOptions) -> tuple[T, dict[str, bytes]]:
    """The capture ``shot`` and what ``extract`` asks for.  A viewport, element or clip capture
    holds the page still, so the content is read while Chromium paints and encodes the image
    (a full page is read after its reveal has loaded the lazy content, a PDF after printing)."""
    if opts.full_page or opts.format == "pdf":
        result = await shot
        return result, await read(session, opts.extract)
    reading = asyncio.ensure_future(read(session, opts.extract))
    try:
        result = await shot
    except BaseException:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        raise
    return result, await reading


def _bounded(value: str) -> tuple[bytes, bool]:
    data = value.encode("utf-8", errors="replace")
    if len(data) <= MAX_CONTENT_BYTES:
        return data, False
    return data[:MAX_CONTENT_BYTES].decode("utf-8", errors="ignore").encode("utf-8"), True
