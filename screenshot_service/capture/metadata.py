"""``metadata=true``: what the page says about itself (SPEC §3.2), read beside the capture.

Read in the service's isolated world (PageDriver.evaluate), so a page that redefines
``document.title`` or ``getAttribute`` in its own world changes nothing, and checked
here (readback.py) as any page answer is: every string cut to its bound, every map
and list to its count, every URL resolved against the document's base URL and kept
only when it is http(s) and within its bound (a ``javascript:`` canonical is dropped).

``fonts`` are the families the page's visible text is set in: for each sampled text
element, the first family of its computed ``font-family`` that the browser could
render with — a web font whose face loaded (``document.fonts``), an installed local
font (measured: text set in it differs from the generic fallbacks), or a generic
family (``serif``, ``sans-serif``…) — in order of first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import ScriptError
from . import readback

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver

log = logging.getLogger("screenshot_service.capture")

TEXT_LIMIT = 2000  # characters of a title, a description, a card's value
URL_LIMIT = 4096  # a longer URL is dropped, not cut (a cut URL points elsewhere)
MAX_ENTRIES = 64  # open_graph / twitter keys
MAX_ICONS = 32
MAX_FONTS = 32
KEY_LIMIT = 128

_METADATA_JS = """(limits) => {
  const cut = (value, n) => (typeof value === 'string' ? value.trim().slice(0, n) : null);
  const absolute = (href) => {
    if (typeof href !== 'string' || href.length > limits.url) return null;
    try {
      const url = new URL(href.trim(), document.baseURI);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.href.length <= limits.url ? url.href : null;
    } catch (e) { return null; }
  };
  const urlKey = (key) => /(^|:)(url|secure_url|image|video|audio|src|player)$/.test(key);
  const cards = {og: {}, twitter: {}};
  let description = null;
  for (const meta of Array.from(document.querySelectorAll('meta')).slice(0, 5000)) {
    const key = (meta.getAttribute('property') || meta.getAttribute('name') || '').trim().toLowerCase();
    const content = meta.getAttribute('content');
    if (!key || content === null) continue;
    if (key === 'description') { if (description === null) description = cut(content, limits.text); continue; }
    const prefix = key.startsWith('og:') ? 'og' : key.startsWith('twitter:') ? 'twitter' : null;
    if (!prefix) continue;
    const name = key.slice(prefix.length + 1).slice(0, limits.key);
    const map = cards[prefix];
    if (!name || name in map || Object.keys(map).length >= limits.entries) continue;
    const value = urlKey(name) ? absolute(content) : cut(content, limits.text);
    if (value !== null) map[name] = value;
  }
  const icons = [];
  for (const link of document.querySelectorAll('link[rel][href]')) {
    const rels = (link.getAttribute('rel') || '').toLowerCase().split(/\\s+/);
    if (!rels.some((r) => r === 'icon' || r === 'apple-touch-icon' || r === 'apple-touch-icon-precomposed')) continue;
    const url = absolute(link.getAttribute('href'));
    if (url && !icons.includes(url)) icons.push(url);
    if (icons.length >= limits.icons) break;
  }
  const canonical = document.querySelector('link[rel~="canonical" i][href]');
  const titleElement = document.querySelector('title');
  return {
    title: cut(document.title, limits.text) || (titleElement ? cut(titleElement.textContent, limits.text) : null),
    description,
    lang: cut(document.documentElement ? document.documentElement.getAttribute('lang') : null, limits.key),
    canonical_url: canonical ? absolute(canonical.getAttribute('href')) : null,
    icons, open_graph: cards.og, twitter: cards.twitter, fonts: fontsInUse(limits.fonts),
  };

  function fontsInUse(max) {
    const generic = new Set(['serif', 'sans-serif', 'monospace', 'cursive', 'fantasy', 'system-ui', 'math', 'emoji',
      'ui-serif', 'ui-sans-serif', 'ui-monospace', 'ui-rounded', 'fangsong']);
    const webFaces = new Map();  // lower-case family -> whether a face of it loaded
    for (const face of Array.from(document.fonts).slice(0, 1000)) {
      const family = face.family.replace(/^["']|["']$/g, '').toLowerCase();
      webFaces.set(family, webFaces.get(family) || face.status === 'loaded');
    }
    const context = document.createElement('canvas').getContext('2d');
    const sample = 'mmmmmmmmmmlliWW@#0';
    const width = (font) => { context.font = '72px ' + font; return context.measureText(sample).width; };
    const installed = new Map();
    const isInstalled = (family) => {
      if (!installed.has(family)) {
        const quoted = JSON.stringify(family);
        installed.set(family, ['monospace', 'serif', 'sans-serif'].some((g) => width(quoted + ', ' + g) !== width(g)));
      }
      return installed.get(family);
    };
    const rendered = (family) => {
      const lower = family.toLowerCase();
      if (webFaces.has(lower)) return webFaces.get(lower);
      return generic.has(lower) || isInstalled(family);
    };
    const found = [];
    const seen = new Set();
    const elements = document.body ? [document.body, ...document.body.querySelectorAll('*')].slice(0, 3000) : [];
    for (const element of elements) {
      if (found.length >= max) break;
      const hasText = Array.from(element.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!hasText || !element.getClientRects().length) continue;
      const style = getComputedStyle(element);
      if (style.visibility === 'hidden' || style.display === 'none') continue;
      if (seen.has(style.fontFamily)) continue;
      seen.add(style.fontFamily);
      const families = style.fontFamily.split(',').map((f) => f.trim().replace(/^["']|["']$/g, '')).filter(Boolean);
      const family = families.find(rendered);
      if (family && !found.includes(family)) found.push(family.slice(0, limits.key));
    }
    return found;
  }
}"""

_URL = {"type": "string", "format": "uri"}
METADATA_SCHEMA: dict[str, Any] = {
    "type": "object", "description": "with metadata=true: what the page says about itself (URLs absolute)",
    "required": ["title", "description", "lang", "canonical_url", "icons", "open_graph", "twitter", "fonts"],
    "properties": {
        "title": {"type": ["string", "null"], "maxLength": TEXT_LIMIT},
        "description": {"type": ["string", "null"], "maxLength": TEXT_LIMIT},
        "lang": {"type": ["string", "null"], "maxLength": KEY_LIMIT},
        "canonical_url": {"type": ["string", "null"], "format": "uri"},
        "icons": {"type": "array", "items": _URL, "maxItems": MAX_ICONS},
        "open_graph": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": MAX_ENTRIES,
                       "description": "og:* without the prefix (og:image -> image)"},
        "twitter": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": MAX_ENTRIES,
                    "description": "twitter:* without the prefix"},
        "fonts": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_FONTS},
    }}

_LIMITS = {"text": TEXT_LIMIT, "url": URL_LIMIT, "entries": MAX_ENTRIES, "icons": MAX_ICONS, "fonts": MAX_FONTS,
           "key": KEY_LIMIT}
_KEYS = ("title", "description", "lang", "canonical_url", "icons", "open_graph", "twitter", "fonts")


async def read(page: PageDriver) -> dict[str, Any]:
    """The page's metadata, type-checked and bounded; what a page script could not read is empty
    (the capture itself succeeded: metadata never fails it)."""
    try:
        return _checked(readback.record(await page.evaluate(_METADATA_JS, _LIMITS), _KEYS, what="metadata"))
    except ScriptError as exc:
        log.warning("reading the page's metadata failed: %s", str(exc)[:200])
        return _checked({**dict.fromkeys(_KEYS), "icons": [], "open_graph": {}, "twitter": {}, "fonts": []})


def _checked(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": _optional_text(answer["title"], TEXT_LIMIT, "title"),
        "description": _optional_text(answer["description"], TEXT_LIMIT, "description"),
        "lang": _optional_text(answer["lang"], KEY_LIMIT, "lang"),
        "canonical_url": _url(answer["canonical_url"]),
        "icons": [u for u in (_url(item) for item in _items(answer["icons"], MAX_ICONS, "icons")) if u],
        "open_graph": _card(answer["open_graph"], "open_graph"),
        "twitter": _card(answer["twitter"], "twitter"),
        "fonts": [readback.text(f, limit=KEY_LIMIT, what="fonts") for f in _items(answer["fonts"], MAX_FONTS, "fonts")],
    }


def _optional_text(value: Any, limit: int, what: str) -> str | None:
    return None if value is None else readback.text(value, limit=limit, what=what) or None


def _url(value: Any) -> str | None:
    if value is None:
        return None
    url = readback.text(value, limit=URL_LIMIT + 1, what="url")
    return url if len(url) <= URL_LIMIT and url.startswith(("http://", "https://")) else None


def _items(value: Any, limit: int, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise readback.UnexpectedAnswer(f"{what}: expected a list")
    return value[:limit]


def _card(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise readback.UnexpectedAnswer(f"{what}: expected an object")
    card: dict[str, str] = {}
    for key, item in list(value.items())[:MAX_ENTRIES]:
        card[str(key)[:KEY_LIMIT]] = readback.text(item, limit=max(TEXT_LIMIT, URL_LIMIT), what=what)
    return card
