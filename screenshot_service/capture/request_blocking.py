"""``block_resources`` (by resource type) and ``block_requests`` (URL patterns), SPEC §3.2.

Both are enforced with DevTools ``Fetch`` interception (interception.py enables it
once, together with the origin-scoped headers): only requests of a blocked type, or
whose URL a pattern could match, are paused, so the others cost nothing.  A paused
request that a rule blocks fails with ``BlockedByClient``, which Chromium reports as
blocked by the inspector, so network.py counts it in the result's ``blocked_requests``.
Every frame's requests are covered, iframes' documents included (a pattern naming an
iframe's URL blocks that frame).

The page's own document is never blocked: ``document`` is not a resource type one
can block, a pattern matching the target URL itself is a 400 naming
``block_requests`` (options.py), and a redirect of the main document to a matching
URL is followed (the caller asked for that page).

A pattern matches the whole URL, ``*`` standing for any run of characters (none
included), and also the URL without its query string, so ``*.mp4`` blocks
``/v.mp4?t=3``.  Requests DevTools does not pause (WebSocket handshakes, service
and shared workers') are not covered by patterns; ``websocket`` is blocked by
replacing the ``WebSocket`` constructor of every document, before the page's own
scripts run, by one that fails as a refused connection does (``error``, then ``close``
1006) and reports each attempt to be counted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import DriverError
from ..strict_json import Refused, loads
from .scalar_parsers import CONTROL, Bad, described

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .network import NetworkTracker
    from .options import CaptureOptions

log = logging.getLogger("screenshot_service.capture")

RESOURCE_TYPES = ("image", "media", "font", "stylesheet", "script", "xhr", "fetch", "websocket", "other")
# DevTools' resource types for each name; "other" is every type not named (a document never is,
# and a CORS preflight belongs to the request it precedes).  Neither Fetch nor Chromium's URL
# blocking sees a WebSocket handshake: those are refused by the page's constructor (_NO_SOCKETS_JS).
_DEVTOOLS_TYPES = {
    "image": ("Image",), "media": ("Media",), "font": ("Font",), "stylesheet": ("Stylesheet",),
    "script": ("Script",), "xhr": ("XHR",), "fetch": ("Fetch",), "websocket": (),
    # The types Fetch.enable accepts besides those named (it refuses TextTrack, Manifest, Prefetch...).
    "other": ("Other", "EventSource", "Ping", "CSPViolationReport"),
}
MAX_PATTERNS = 100
MAX_PATTERN_CHARS = 1024


def _items(value: Any, what: str) -> list[Any]:
    """A JSON list, or in a query string JSON text of one or the comma-separated form."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                value = loads(value)
            except Refused as refused:
                raise Bad(f"must be a list of {what} (this JSON {refused})") from None
        else:
            value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise Bad(f"must be a list of {what}")
    return list(value)


def _resource_types(value: Any) -> tuple[str, ...]:
    chosen = set()
    for item in _items(value, "resource types"):
        if not isinstance(item, str) or item.strip().lower() not in RESOURCE_TYPES:
            shown = repr(item)[:40]
            raise Bad(f"{shown} is not a resource type; each must be one of {', '.join(RESOURCE_TYPES)}")
        chosen.add(item.strip().lower())
    return tuple(sorted(chosen))  # sorted: the same choice is the same cache fingerprint


resource_types = described(_resource_types, {
    "type": "array", "maxItems": len(RESOURCE_TYPES), "uniqueItems": True,
    "items": {"type": "string", "enum": list(RESOURCE_TYPES), "description": "resource types"}})


def _url_patterns(value: Any) -> tuple[str, ...]:
    items = _items(value, "URL patterns")
    if len(items) > MAX_PATTERNS:
        raise Bad(f"must be at most {MAX_PATTERNS} URL patterns, not {len(items)}")
    patterns: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise Bad(f"entry {index} must be a non-empty URL pattern")
        pattern = item.strip()
        if len(pattern) > MAX_PATTERN_CHARS:
            raise Bad(f"entry {index} must be at most {MAX_PATTERN_CHARS} characters")
        if CONTROL.search(pattern) or " " in pattern:
            raise Bad(f"entry {index} must not contain spaces or control characters")
        if pattern.strip("*") == "":
            raise Bad(f"entry {index} ({pattern!r}) would block every request, the page's own included")
        if pattern not in patterns:
            patterns.append(pattern)
    return tuple(patterns)


url_patterns = described(_url_patterns, {
    "type": "array", "maxItems": MAX_PATTERNS, "items": {
        "type": "string", "minLength": 1, "maxLength": MAX_PATTERN_CHARS, "description": "URL patterns"}})


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def url_matches(url: str, pattern: str) -> bool:
    """``pattern`` (``*`` wildcards) matches the whole ``url``, or the URL without query and fragment."""
    compiled = _compiled(pattern)
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return compiled.fullmatch(url) is not None or compiled.fullmatch(bare) is not None


def target_problem(url: str | None, patterns: tuple[str, ...]) -> str | None:
    """Why ``patterns`` cannot be used with the target ``url`` (one matches the page itself), else None."""
    for pattern in patterns if url else ():
        if url_matches(url or "", pattern):
            return f"{pattern!r} matches the url itself: the page to capture cannot be blocked"
    return None


def _fetch_pattern(text: str) -> str:
    # DevTools patterns know "*" and "?" (one character), "\" escaping: only "*" is ours.
    return text.replace("\\", "\\\\").replace("?", "\\?")


# Each refusal is reported on the console with a token of this capture (a DevTools binding would
# reach pyppeteer's own binding handler): the page can neither read the token (it is a value
# of the closure, not of the constructor's source) nor silence the report (console.debug is
# taken before any page script runs).  The class keeps the constructor's shape (constants, on*
# handlers, events) so pages that handle a failed connection go on as they would.
_NO_SOCKETS_JS = """(() => {
  const token = TOKEN;
  const report = console.debug.bind(console);
  class WebSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = String(url); this.readyState = 3; this.protocol = ''; this.extensions = '';
      this.binaryType = 'blob'; this.bufferedAmount = 0;
      this.onopen = this.onmessage = this.onerror = this.onclose = null;
      try { report(token); } catch (e) {}
      setTimeout(() => {
        const error = new Event('error');
        if (typeof this.onerror === 'function') this.onerror(error);
        this.dispatchEvent(error);
        const close = new CloseEvent('close', {code: 1006, wasClean: false});
        if (typeof this.onclose === 'function') this.onclose(close);
        this.dispatchEvent(close);
      });
    }
    send() { throw new DOMException('the connection was refused', 'InvalidStateError'); }
    close() {}
  }
  Object.assign(WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  Object.defineProperty(window, 'WebSocket', {value: WebSocket, writable: false, configurable: false});
})();"""


class RequestBlocker:
    """Judges and fails the paused requests the caller's rules block.  Chromium reports each as
    blocked by the inspector (``Network.loadingFailed``), which network.py counts."""

    def __init__(self, page: PageDriver, opts: CaptureOptions) -> None:
        self.page = page
        self.types = frozenset(t for name in opts.block_resources for t in _DEVTOOLS_TYPES[name])
        self.url_rules = opts.block_requests
        self._main_frame = page.main_frame_id
        self._pending: set[asyncio.Task[None]] = set()

    async def refuse_websockets(self, network: NetworkTracker) -> None:
        """Before navigation: every document's WebSocket fails without a handshake, counted in ``network``."""
        token = secrets.token_hex(16)

        def count(event: dict[str, Any]) -> None:
            args = event.get("args") or [{}]
            if isinstance(args[0], dict) and args[0].get("value") == token:
                network.blocked += 1

        self.page.on("Runtime.consoleAPICalled", count)
        await self.page.send("Page.addScriptToEvaluateOnNewDocument",
                             {"source": _NO_SOCKETS_JS.replace("TOKEN", json.dumps(token))})

    @classmethod
    def of(cls, page: PageDriver, opts: CaptureOptions) -> RequestBlocker | None:
        return cls(page, opts) if opts.block_resources or opts.block_requests else None

    def patterns(self) -> list[dict[str, Any]]:
        """The Fetch patterns pausing every request a rule may block, and no other."""
        found = [{"urlPattern": "*", "resourceType": t, "requestStage": "Request"} for t in sorted(self.types)]
        for rule in self.url_rules:
            found.append({"urlPattern": _fetch_pattern(rule), "requestStage": "Request"})
            found.append({"urlPattern": _fetch_pattern(rule) + "\\?*", "requestStage": "Request"})
        return found

    def blocks(self, event: dict[str, Any]) -> bool:
        kind = event.get("resourceType")
        if kind == "Document" and event.get("frameId") == self._main_frame:
            return False  # the page's own document, wherever it redirects
        if kind in self.types:
            return True
        url = str((event.get("request") or {}).get("url", ""))
        return any(url_matches(url, rule) for rule in self.url_rules)

    def fail(self, event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._fail(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _fail(self, event: dict[str, Any]) -> None:
        try:
            await self.page.send("Fetch.failRequest",
                                 {"requestId": event.get("requestId"), "errorReason": "BlockedByClient"})
        except DriverError as exc:  # cancelled meanwhile, or the page is gone
            log.debug("blocking a request failed: %s", str(exc)[:200])
