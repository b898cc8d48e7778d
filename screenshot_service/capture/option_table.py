"""The capture options of SPEC §3: one declaration each (see declaration.py).

To add an option, add one field here, in its group; CaptureOptions
(options.py) validates it, and OpenAPI, the API Tester, signed links and jobs
show or refuse it from this declaration.  Its behaviour is the capture's part.
The value parsers are in parsers.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import parsers as parse
from .content_options import CONTENT_FORMATS, extract_list
from .declaration import BODY, JOB, QUERY, Conflict, Restriction, option
from .devices import DEVICES
from .parsers import Clip, Cookie, Geolocation
from .pdf_parsers import MAX_PAPER_INCHES, MIN_PAPER_INCHES, PAPER_FORMATS, css_length, page_ranges, template

if TYPE_CHECKING:
    from ..storage.customer import CustomerS3

IMAGE_FORMATS = ("png", "jpeg", "webp")
FORMATS = (*IMAGE_FORMATS, "pdf", *CONTENT_FORMATS)
# ready: network quiet, fonts loaded, images decoded and layout still (capture/ready.py)
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle0", "networkidle2", "ready")
RESPONSE_TYPES = ("json", "base64", "image")
# Where caller headers go: the target's origin only, or every origin the page loads (third parties see them).
HEADER_SCOPES = ("origin", "all")
MEDIA_TYPES = ("screen", "print")
THUMB_FITS = ("contain", "cover")
HTML_MAX_BYTES = 2 * 1024 * 1024
# A 2 MB document or credentials have no place in a URL; headers and cookies on a public
# link would be sent to the target by anyone holding it.
POST_ONLY = frozenset({BODY, JOB})
NOT_IN_LINKS = frozenset({QUERY, BODY, JOB})

# The groups, in the order the API Tester shows them.
PAGE, VIEWPORT, AREA, OUTPUT = "Page", "Viewport and device", "Capture area", "Output"
THUMBNAIL = "Thumbnail"
WAITING, CONTENT, BLOCKING, EMULATION, CACHE = "Waiting", "Content changes", "Blocking", "Emulation", "Cache"
PDF = "PDF"
EXTRACT = "Page content"
GROUPS = (PAGE, VIEWPORT, AREA, OUTPUT, THUMBNAIL, PDF, EXTRACT, WAITING, CONTENT, BLOCKING, EMULATION, CACHE)

_NO_PDF_THUMBS = "thumbnails are images: {name} cannot be combined with format={{value}}"
_NOT_IMAGE = ("pdf", *CONTENT_FORMATS)  # formats that are no image: no area, no thumbnail
_AREA_OF_IMAGE = "{name} chooses an area of an image: it cannot be combined with format={{value}}"
_PAPER = css_length(MIN_PAPER_INCHES, MAX_PAPER_INCHES)
_MARGIN = css_length(0, MAX_PAPER_INCHES / 2)
_SINGLE_HEIGHT = "pdf_height and pdf_single_page cannot be combined: a single page is as tall as its content"
_SINGLE_RANGES = "pdf_page_ranges and pdf_single_page cannot be combined: a single page has no other pages"


def _pdf_only(name: str) -> tuple[Conflict, ...]:
    return (Conflict("format", f"{name} only applies to format=pdf, not {{value}}",
                     values=(*IMAGE_FORMATS, *CONTENT_FORMATS), named=True),)


@dataclass(frozen=True)
class OptionTable:
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
        conflicts=(Conflict("format", _AREA_OF_IMAGE.format(name="full_page"), values=CONTENT_FORMATS),))
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
            Conflict("format", "selector cannot be combined with format={value}", values=_NOT_IMAGE),
        ))
    clip: Clip | None = option(
        None, parse.clip, AREA,
        "Capture a rectangle: `x,y,width,height` (query) or an object, CSS px; the same bounds as `selector`, "
        "a 400 on `clip`.",
        conflicts=(
            Conflict("full_page", "clip and full_page cannot be combined: clip and full_page both choose the "
                                  "captured area"),
            Conflict("format", "clip cannot be combined with format={value}", values=_NOT_IMAGE),
        ))

    format: str = option(
        "png", parse.choice(*FORMATS), OUTPUT,
        "Output format: an image, a PDF, or the page's content alone (`html`, `markdown`, `text`; UTF-8, "
        "with `response_type=image` the document itself).")
    quality: int = option(
        80, parse.integer(1, 100), OUTPUT, "JPEG/WebP quality.",
        conflicts=(Conflict("format", "quality only applies to images, not format={value}", values=CONTENT_FORMATS,
                            named=True),))
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
        conflicts=(Conflict("format", _NO_PDF_THUMBS.format(name="thumb_width"), values=_NOT_IMAGE, named=True),))
    thumb_height: int | None = option(
        None, parse.integer(16, 3840), THUMBNAIL,
        "Scale the image down to this height in pixels; alone, the width follows the aspect ratio.",
        conflicts=(Conflict("format", _NO_PDF_THUMBS.format(name="thumb_height"), values=_NOT_IMAGE, named=True),))
    thumb_fit: str = option(
        "contain", parse.choice(*THUMB_FITS), THUMBNAIL,
        "With both `thumb_width` and `thumb_height`: `contain` fits the image inside the box (aspect ratio "
        "kept), `cover` fills the box exactly, cropping the overflow around the centre.",
        conflicts=(Conflict("format", _NO_PDF_THUMBS.format(name="thumb_fit"), values=_NOT_IMAGE, named=True),))

    pdf_paper_format: str = option(
        "letter", parse.choice(*PAPER_FORMATS), PDF, "Paper size (`pdf_width` and `pdf_height` override it).",
        conflicts=_pdf_only("pdf_paper_format"))
    pdf_width: str | None = option(
        None, _PAPER, PDF, "Custom paper width, a CSS length (`210mm`, `8.5in`, `21cm`, `800px`, `12pt`); "
        "with `pdf_height`.", conflicts=_pdf_only("pdf_width"))
    pdf_height: str | None = option(
        None, _PAPER, PDF, "Custom paper height, a CSS length; with `pdf_width`.",
        conflicts=(*_pdf_only("pdf_height"), Conflict("pdf_single_page", _SINGLE_HEIGHT)))
    pdf_landscape: bool = option(False, parse.boolean, PDF, "Landscape paper.", conflicts=_pdf_only("pdf_landscape"))
    pdf_margin: str = option(
        "0.4in", _MARGIN, PDF, "All four margins, a CSS length; `pdf_margin_top` and the other sides override one.",
        conflicts=_pdf_only("pdf_margin"))
    pdf_margin_top: str | None = option(
        None, _MARGIN, PDF, "Top margin (the header's room).", conflicts=_pdf_only("pdf_margin_top"))
    pdf_margin_right: str | None = option(
        None, _MARGIN, PDF, "Right margin.", conflicts=_pdf_only("pdf_margin_right"))
    pdf_margin_bottom: str | None = option(
        None, _MARGIN, PDF, "Bottom margin (the footer's room).", conflicts=_pdf_only("pdf_margin_bottom"))
    pdf_margin_left: str | None = option(
        None, _MARGIN, PDF, "Left margin.", conflicts=_pdf_only("pdf_margin_left"))
    pdf_print_background: bool = option(
        True, parse.boolean, PDF, "Print backgrounds and colours as on screen.",
        conflicts=_pdf_only("pdf_print_background"))
    pdf_scale: float = option(
        1.0, parse.number(0.1, 2), PDF, "Scale of the page's rendering.", conflicts=_pdf_only("pdf_scale"))
    pdf_page_ranges: str | None = option(
        None, page_ranges, PDF, "Pages to keep, e.g. `1-3,5`; a page past the last one is a 400.",
        conflicts=(*_pdf_only("pdf_page_ranges"), Conflict("pdf_single_page", _SINGLE_RANGES)))
    pdf_header_html: str | None = option(
        None, template, PDF,
        "Header on every page (HTML, at most 64 KB): elements with class `pageNumber`, `totalPages`, `date`, "
        "`title` or `url` are filled in; it loads nothing from the network (images only as `data:` URLs).",
        conflicts=_pdf_only("pdf_header_html"))
    pdf_footer_html: str | None = option(
        None, template, PDF,
        "Footer on every page, like `pdf_header_html`.", conflicts=_pdf_only("pdf_footer_html"))
    pdf_prefer_css_page_size: bool = option(
        True, parse.boolean, PDF, "A CSS `@page { size }` wins over the paper options.",
        conflicts=_pdf_only("pdf_prefer_css_page_size"))
    pdf_single_page: bool = option(
        False, parse.boolean, PDF, "The whole document on one page as tall as its content (at most 200 in).",
        conflicts=_pdf_only("pdf_single_page"))
    pdf_outline: bool = option(
        False, parse.boolean, PDF, "A document outline (bookmarks) from the headings.",
        conflicts=_pdf_only("pdf_outline"))
    pdf_tagged: bool = option(
        False, parse.boolean, PDF, "A tagged (accessible) PDF.", conflicts=_pdf_only("pdf_tagged"))

    # The page's content beside the image (capture/content.py): stored like it, listed in result.content.
    extract: tuple[str, ...] = option(
        (), extract_list, EXTRACT,
        "The rendered page's content stored beside the image (same retention and storage, your bucket "
        "with `s3`): any of `html` (the DOM after scripts ran), `markdown` (headings, lists, links and "
        "images with absolute URLs, tables, code; no scripts, styles or hidden elements), `text` "
        "(what a reader sees); comma-separated in a query string.  Result `content.{kind}` = "
        "`{url, bytes}`; each at most 10 MB, else cut with the warning `content_truncated`.")

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
        "instead of being captured with an `http_error` warning.")

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
