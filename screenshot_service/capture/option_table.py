"""The capture options of SPEC §3: one declaration each (see declaration.py).

To add an option, add one field here, in its group; CaptureOptions
(options.py) validates it, and OpenAPI, the API Tester, signed links and jobs
show or refuse it from this declaration.  Its behaviour is the capture's part.
The value parsers are in parsers.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import action_parsers, diff_options, proxy_options, request_blocking
from . import parsers as parse
from .action_parsers import Step
from .content_options import CONTENT_FORMATS, extract_list
from .declaration import BODY, JOB, Conflict, Restriction, option
from .devices import DEVICES
from .option_vocabulary import (
    ACTIONS,
    AREA,
    AREA_OF_IMAGE,
    BLOCKING,
    CACHE,
    CONTENT,
    EMULATION,
    EXTRACT,
    FORMATS,
    HEADER_SCOPES,
    HTML_MAX_BYTES,
    MEDIA_TYPES,
    NOT_FOR_THUMBNAILS,
    NOT_IMAGE,
    NOT_IN_LINKS,
    OUTPUT,
    PAGE,
    POST_ONLY,
    RESPONSE_TYPES,
    THUMB_FITS,
    THUMBNAIL,
    UPSTREAM,
    VIEWPORT,
    VISUAL_CHANGE,
    WAIT_UNTIL,
    WAITING,
)
from .parsers import Clip, Cookie, Geolocation
from .pdf_option_table import PdfOptionTable

if TYPE_CHECKING:
    from ..egress.upstream import Upstream
    from ..storage.customer import CustomerS3

@dataclass(frozen=True)
class OptionTable(PdfOptionTable):
    """Every option; the PDF group's are declared in pdf_option_table.py."""

    url: str | None = option(
        None, parse.text(8192), PAGE, "Page to capture; http or https only. Required unless `html` is given.",
        conflicts=(Conflict("html", "url and html cannot be combined: give either url or html, not both"),))
    html: str | None = option(
        None, parse.text(HTML_MAX_BYTES, utf8_bytes=True), PAGE,
        "POST only: render this HTML (at most 2 MB) instead of a URL.", accepted=POST_ONLY)

    width: int = option(1280, parse.integer(100, 3840), VIEWPORT, "Viewport width in CSS pixels.")
    height: int = option(800, parse.integer(100, 2160), VIEWPORT, "Viewport height in CSS pixels.")
    device_scale_factor: float = option(
        1.0, parse.number(1, 3), VIEWPORT, "Pixel density: the image is viewport times this.")
    device: str | None = option(
        None, parse.choice(*DEVICES), VIEWPORT,
        "Preset: viewport, scale, mobile, touch and user agent (explicit width/height/scale/UA win).")

    full_page: bool = option(
        False, parse.boolean, AREA, "Capture the whole scroll height; lazy content is revealed by scrolling first.",
        conflicts=(Conflict("format", AREA_OF_IMAGE, values=CONTENT_FORMATS),))
    max_height: int = option(
        16384, parse.integer(100, 65536), AREA,
        "Cap for full-page height in CSS px; taller pages are cut (`clamped: true`), also at the "
        "pixel budget (160 M device px).")
    selector: str | None = option(
        None, parse.selector, AREA,
        "Capture just the first element matching this CSS selector; an element over 16384 device px wide "
        "(CSS px x scale), over 160 M device px, or (JPEG/WebP) over 16384 tall is a 400 on `selector`.",
        conflicts=(
            Conflict("clip", "selector and clip cannot be combined: selector and clip both choose the captured area"),
            Conflict("full_page", "selector and full_page cannot be combined: an element capture is never full-page"),
            Conflict("format", "selector cannot be combined with format={value}", values=NOT_IMAGE),
        ))
    clip: Clip | None = option(
        None, parse.clip, AREA,
        "Capture a rectangle: `x,y,width,height` (query) or an object, CSS px; the same bounds as `selector`, "
        "a 400 on `clip`.",
        conflicts=(
            Conflict("full_page", "clip and full_page cannot be combined: clip and full_page both choose the "
                                  "captured area"),
            Conflict("format", "clip cannot be combined with format={value}", values=NOT_IMAGE),
        ))

    format: str = option(
        "png", parse.choice(*FORMATS), OUTPUT,
        "Output format: an image, a PDF, or the page's content alone (`html`, `markdown`, `text`; UTF-8, "
        "with `response_type=image` the document itself).")
    quality: int = option(
        80, parse.integer(1, 100), OUTPUT, "JPEG/WebP quality.",
        conflicts=(Conflict("format", "quality only applies to images, not format={value}", values=CONTENT_FORMATS,
                            named=True),))
    metadata: bool = option(
        False, parse.boolean, OUTPUT,
        "Add `metadata` to the result: title, description, lang, canonical_url, icons, open_graph, twitter "
        "(absolute URLs) and the font families the page's text rendered with.", changes_image=False)
    omit_background: bool = option(
        False, parse.boolean, OUTPUT, "Transparent background (png/webp).",
        conflicts=(Conflict("format", "omit_background needs png or webp, not {value}",
                            values=("jpeg", "pdf", *CONTENT_FORMATS)),))
    response_type: str = option(
        "json", parse.choice(*RESPONSE_TYPES), OUTPUT,
        "`json` (a URL), `base64` (JSON plus the image) or `image` (the bytes).", in_fingerprint=False,
        restrictions=(Restriction(JOB, ("json",), "a job's result is always JSON; fetch the image from result.url"),))
    # Its scheme, host and address are judged at submit by the egress policy (invalid_url, blocked_target).
    webhook_url: str | None = option(
        None, parse.text(2048, single_line=True), OUTPUT,
        "Jobs only: an http(s) URL POSTed the final job JSON, signed with X-Signature.",
        accepted=frozenset({JOB}), in_fingerprint=False)
    # Credentials are never stored, and a job waits in the store: customer buckets are sync-only.
    s3: CustomerS3 | None = option(
        None, parse.s3_destination, OUTPUT,
        "POST only: upload to your own bucket with your credentials (never stored or logged).",
        accepted=frozenset({BODY}), in_fingerprint=False)

    # Thumbnails (capture/thumbnail.py): the capture above, scaled down as Chromium rasterises it.
    thumb_width: int | None = option(
        None, parse.integer(16, 3840), THUMBNAIL,
        "Scale the image down to this width in pixels; alone, the height follows the aspect ratio. "
        "Never enlarged: an image already inside the box is returned as captured.",
        conflicts=(Conflict("format", NOT_FOR_THUMBNAILS, values=NOT_IMAGE, named=True),))
    thumb_height: int | None = option(
        None, parse.integer(16, 3840), THUMBNAIL,
        "Scale the image down to this height in pixels; alone, the width follows the aspect ratio.",
        conflicts=(Conflict("format", NOT_FOR_THUMBNAILS, values=NOT_IMAGE, named=True),))
    thumb_fit: str = option(
        "contain", parse.choice(*THUMB_FITS), THUMBNAIL,
        "With both `thumb_width` and `thumb_height`: `contain` fits the image inside the box (aspect ratio "
        "kept), `cover` fills the box exactly, cropping the overflow around the centre.",
        conflicts=(Conflict("format", NOT_FOR_THUMBNAILS, values=NOT_IMAGE, named=True),))

    # The page's content beside the image (capture/content.py): stored like it, listed in result.content.
    extract: tuple[str, ...] = option(
        (), extract_list, EXTRACT,
        "The rendered page's content stored beside the image (same retention and storage, your bucket "
        "with `s3`): any of `html` (the DOM after scripts ran), `markdown` (headings, lists, links and "
        "images with absolute URLs, tables, code; no scripts, styles or hidden elements), `text` "
        "(what a reader sees); comma-separated in a query string.  Result `content.{kind}` = "
        "`{url, bytes}`; each at most 10 MB, else cut with the warning `content_truncated`.", changes_image=False)

    wait_until: str = option(
        "load", parse.choice(*WAIT_UNTIL), WAITING,
        "Navigation completion: an event, or `ready` (network quiet 500 ms, fonts loaded, every image "
        "decoded, no layout shift for 300 ms; bounded, else captured with a `ready_timeout` warning).")
    wait_for_selector: str | None = option(
        None, parse.selector, WAITING, "Wait until an element matching this selector is visible.")
    delay: int = option(0, parse.integer(0, 10000), WAITING, "Extra wait before capture, in milliseconds.")
    timeout: int = option(
        30, parse.integer(1, 30), WAITING, "The request's own deadline in seconds, never above the server's.",
        in_fingerprint=False)
    fail_on_http_error: bool = option(
        False, parse.boolean, WAITING,
        "A main document answering >= 400 fails with 502 `target_http_error` (refunded) "
        "instead of being captured with an `http_error` warning.", changes_image=False)

    wait_for_function: str | None = option(
        None, action_parsers.wait_for_function, ACTIONS,
        "A JavaScript expression (or a function, called) run in the page until it is truthy, polled after "
        "the page is ready and before `actions`; a promise is awaited.  Throwing is 400 `action_failed` "
        "(`index` null, reason `js_error`); never truthy ends at the deadline (504).")
    actions: tuple[Step, ...] = option(
        (), action_parsers.actions, ACTIONS,
        "Steps run in order before the capture, as real input (a JSON list; JSON text in a query string), "
        "at most 20: `{\"click\": SEL}`, `{\"hover\": SEL}`, `{\"type\": {\"selector\": SEL, \"text\": T}}`, "
        "`{\"press\": KEY}`, `{\"scroll_to\": SEL}` or `{\"scroll_to\": {\"y\": PX}}`, `{\"wait_for_selector\": SEL}`, "
        "`{\"wait_for_selector_hidden\": SEL}`, `{\"wait_for_function\": JS}`, `{\"wait\": MS}` (at most 10000); the three waits take an optional `\"timeout\": MS` (reason `timeout`), "
        "else the deadline ends them.  "
        "A failing step is 400 `action_failed` with `index`, `action` and `reason` (`selector_not_found`, "
        "`not_visible`, `timeout`, `js_error`), not charged.")

    hide_selectors: tuple[str, ...] = option(
        (), parse.selector_list, CONTENT, "Elements hidden before capture (comma-separated in a query string).")
    css: str | None = option(None, parse.text(1024 * 1024), CONTENT, "CSS injected before capture.")
    js: str | None = option(
        None, parse.text(1024 * 1024), CONTENT, "JavaScript run before capture; an exception is a 400 on `js`.")
    disable_animations: bool = option(
        False, parse.boolean, CONTENT,
        "Deterministic pixels: animations and transitions jump to their end (infinite ones to "
        "their start), videos pause on their first frame, the caret is hidden.")

    block_ads: bool = option(False, parse.boolean, BLOCKING, "Block requests to hosts on the bundled ad list.")
    block_trackers: bool = option(
        False, parse.boolean, BLOCKING, "Block requests to hosts on the bundled tracker list.")
    block_cookie_banners: bool = option(
        False, parse.boolean, BLOCKING, "Hide and dismiss common cookie-consent banners.")
    block_resources: tuple[str, ...] = option(
        (), request_blocking.resource_types, BLOCKING,
        "Resource types whose requests are not made, counted in `blocked_requests`: "
        f"{', '.join(request_blocking.RESOURCE_TYPES)} (a list; comma-separated in a query string). "
        "The page's own document is never blocked.")
    block_requests: tuple[str, ...] = option(
        (), request_blocking.url_patterns, BLOCKING,
        f"URL patterns (`*` wildcard, e.g. `*://*.example.com/*`, `*.mp4`; at most {request_blocking.MAX_PATTERNS}, "
        f"{request_blocking.MAX_PATTERN_CHARS} characters each) whose requests are not made, counted in "
        "`blocked_requests`; a pattern matches the whole URL, or the URL without its query. A list "
        "(comma-separated or JSON text in a query string); one matching `url` itself is a 400.")

    dark_mode: bool = option(False, parse.boolean, EMULATION, "Emulate prefers-color-scheme: dark.")
    reduced_motion: bool = option(False, parse.boolean, EMULATION, "Emulate prefers-reduced-motion: reduce.")
    # None: by format (CaptureOptions.css_media), so that a pdf is a print unless asked otherwise.
    media_type: str | None = option(
        None, parse.choice(*MEDIA_TYPES), EMULATION,
        "CSS media the page is rendered with (images too): `screen` or `print`; by default `print` for pdf, "
        "`screen` otherwise.")
    user_agent: str | None = option(
        None, parse.text(1024, single_line=True), EMULATION, "User-Agent sent to the target.")
    headers: tuple[tuple[str, str], ...] = option(
        (), parse.headers, EMULATION,
        "Extra HTTP headers sent to the target's origin only, unless `headers_scope=all` "
        "(a JSON object; JSON text in a query string).", accepted=NOT_IN_LINKS,
        conflicts=(Conflict("html", "headers with html need headers_scope=all: html has no target origin to "
                                    "send them to", unless=("headers_scope", "all")),))
    headers_scope: str = option(
        "origin", parse.choice(*HEADER_SCOPES), EMULATION,
        "Where `headers` go: `origin` (scheme, host and port of `url`, on the requests of the top-level "
        "navigation and of frames of that origin, never of a cross-origin or sandboxed iframe) or `all` "
        "(every origin the page loads: third parties see them too).")
    cookies: tuple[Cookie, ...] = option(
        (), parse.cookies, EMULATION,
        "Cookies set for the target's host only (a JSON list; JSON text in a query string).", accepted=NOT_IN_LINKS,
        conflicts=(Conflict("html", "cookies and html cannot be combined: cookies need a url to belong to"),))
    timezone: str | None = option(
        None, parse.timezone, EMULATION, "IANA time zone emulated for the page (`Intl`, `Date`), e.g. `Europe/Paris`.")
    locale: str | None = option(
        None, parse.locale, EMULATION,
        "BCP 47 tag for `navigator.language(s)`, `Intl`'s default and `Accept-Language`, e.g. `de-DE`.")
    geolocation: Geolocation | None = option(
        None, parse.geolocation, EMULATION,
        "Emulated position, `{latitude, longitude, accuracy?}` (JSON) or `lat,lon[,accuracy]` (query); "
        "accuracy in metres, 100 by default; permission granted to the target's origin only.")

    cache: bool = option(
        False, parse.boolean, CACHE, "Reuse an identical earlier capture of this account (no render, no credit).",
        in_fingerprint=False)
    cache_ttl: int = option(
        86400, parse.integer(1, 2592000), CACHE, "How long, in seconds, a capture may be reused with `cache`.",
        in_fingerprint=False)

    # Upstream proxies (SPEC §3.4): chained behind the egress proxy's own checks (egress/chain.py).
    proxy: Upstream | None = option(
        None, proxy_options.proxy, UPSTREAM,
        "POST body and jobs only (credentials never go in a URL): `http://[user:pass@]host:port` (user and "
        "password percent-encoded) that every request of the capture leaves through, after the service's own "
        "egress check; https and WebSockets through CONNECT. The proxy's address obeys the egress policy.",
        accepted=POST_ONLY,
        conflicts=(Conflict("proxy_pool", "proxy and proxy_pool cannot be combined: give one of them"),))
    proxy_pool: str | None = option(
        None, proxy_options.pool_name, UPSTREAM,
        "The name of one of the operator's proxy pools, used in turn; the key's plan says which it may use.")
    # Visual change (capture/visual_change.py): this image against an earlier one of the same key.
    # Neither is in the cache fingerprint: a comparison is about now, so compare_to skips the cache.
    compare_to: str | None = option(
        None, diff_options.compare_to, VISUAL_CHANGE,
        "Compare the new image with a baseline of this key: `previous` (this key's last good capture of "
        "the same `url` and image-changing options; never one with a `blank_capture`, `http_error` or "
        "`ready_timeout` warning) or a capture `id`.  Adds `diff` to the result (null with the warning "
        "`no_baseline` when there is none yet); never served from the cache.",
        accepted=NOT_IN_LINKS, in_fingerprint=False,
        conflicts=(Conflict("format", "{name} compares images: it cannot be combined with format={value}",
                            values=NOT_IMAGE),))
    diff_threshold: float = option(
        diff_options.DEFAULT_THRESHOLD, parse.number(0, 1), VISUAL_CHANGE,
        "With `compare_to`: per-pixel colour distance (YIQ, as pixelmatch) from 0 (any change counts) to 1 "
        "under which two pixels count as equal.",
        accepted=NOT_IN_LINKS, in_fingerprint=False,
        conflicts=(Conflict("format", "{name} compares images: it cannot be combined with format={value}",
                            values=NOT_IMAGE, named=True),))
