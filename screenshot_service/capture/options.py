"""CaptureOptions: every capture option validated in one place (SPEC §3).

The same table parses a query string (everything is text) and a JSON body
(typed values).  Each problem is reported against its field name, all at once,
and unknown names are refused so that typos surface instead of being ignored.
Combinations that cannot both hold are reported against both names.  The value
parsers (including those for clip, headers, cookies and selector lists) are in parsers.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter
from . import bounds
from .devices import DEVICES
from .parsers import (
    Bad,
    Clip,
    Cookie,
    Geolocation,
    boolean,
    choice,
    clip,
    cookies,
    geolocation,
    headers,
    http_url,
    integer,
    locale,
    number,
    s3_destination,
    selector,
    selector_list,
    text,
    timezone,
)

if TYPE_CHECKING:
    from ..storage.customer import CustomerS3

FORMATS = ("png", "jpeg", "webp", "pdf")
# ready: network quiet, fonts loaded, images decoded and layout still (capture/ready.py)
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle0", "networkidle2", "ready")
RESPONSE_TYPES = ("json", "base64", "image")
# Where caller headers go: the target's origin only, or every origin the page loads (third parties see them).
HEADER_SCOPES = ("origin", "all")
# Names accepted next to the options but not options themselves.
NON_OPTION_NAMES = ("api_key",)
# Only a JSON body can carry these: a 2 MB document or credentials have no place in a URL.
POST_ONLY = ("html", "s3")
HTML_MAX_BYTES = 2 * 1024 * 1024
# What never changes the produced image, so an otherwise identical request may reuse it.
NOT_IN_FINGERPRINT = ("response_type", "timeout", "cache", "cache_ttl", "webhook_url", "s3")
# A preset supplies these unless the caller gave them (see devices.py for the precedence).
PRESET_FIELDS = {"width": "width", "height": "height", "device_scale_factor": "scale", "user_agent": "user_agent"}
# (a, b, why): a request may not set both.
EXCLUSIVE: tuple[tuple[str, str, str], ...] = (
    ("url", "html", "give either url or html, not both"),
    ("selector", "clip", "selector and clip both choose the captured area"),
    ("selector", "full_page", "an element capture is never full-page"),
    ("clip", "full_page", "clip and full_page both choose the captured area"),
    ("cookies", "html", "cookies need a url to belong to"),
)
# How the options are presented (the API Tester's sections, in order): every option of
# CaptureOptions.parsers() belongs to exactly one group (tests/test_tester_page.py checks).
OPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Page", ("url", "html")),
    ("Viewport and device", ("width", "height", "device_scale_factor", "device")),
    ("Capture area", ("full_page", "max_height", "selector", "clip")),
    ("Output", ("format", "quality", "omit_background", "response_type", "webhook_url", "s3")),
    ("Waiting", ("wait_until", "wait_for_selector", "delay", "timeout", "fail_on_http_error")),
    ("Content changes", ("hide_selectors", "css", "js", "disable_animations")),
    ("Blocking", ("block_ads", "block_trackers", "block_cookie_banners")),
    ("Emulation", ("dark_mode", "reduced_motion", "user_agent", "headers", "headers_scope", "cookies", "timezone",
                   "locale", "geolocation")),
    ("Cache", ("cache", "cache_ttl")),
)


@dataclass(frozen=True)
class CaptureOptions:
    url: str | None = None
    html: str | None = None
    width: int = 1280
    height: int = 800
    device_scale_factor: float = 1.0
    device: str | None = None
    full_page: bool = False
    max_height: int = 16384
    selector: str | None = None
    clip: Clip | None = None
    format: str = "png"
    quality: int = 80
    omit_background: bool = False
    wait_until: str = "load"
    wait_for_selector: str | None = None
    delay: int = 0
    timeout: int = 30
    hide_selectors: tuple[str, ...] = ()
    css: str | None = None
    js: str | None = None
    block_ads: bool = False
    block_trackers: bool = False
    block_cookie_banners: bool = False
    dark_mode: bool = False
    reduced_motion: bool = False
    user_agent: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    headers_scope: str = "origin"
    cookies: tuple[Cookie, ...] = ()
    cache: bool = False
    cache_ttl: int = 86400
    response_type: str = "json"
    webhook_url: str | None = None
    s3: CustomerS3 | None = None
    disable_animations: bool = False
    fail_on_http_error: bool = False
    timezone: str | None = None
    locale: str | None = None
    geolocation: Geolocation | None = None

    # name -> parser; the single source of truth for what is accepted
    @staticmethod
    def parsers() -> dict[str, Callable[[Any], Any]]:
        return {
            "url": text(8192),
            "html": text(HTML_MAX_BYTES, utf8_bytes=True),
            "width": integer(100, 3840),
            "height": integer(100, 2160),
            "device_scale_factor": number(1, 3),
            "device": choice(*DEVICES),
            "full_page": boolean,
            "max_height": integer(100, 65536),
            "selector": selector,
            "clip": clip,
            "format": choice(*FORMATS),
            "quality": integer(1, 100),
            "omit_background": boolean,
            "wait_until": choice(*WAIT_UNTIL),
            "wait_for_selector": selector,
            "delay": integer(0, 10000),
            "timeout": integer(1, 30),
            "hide_selectors": selector_list,
            "css": text(1024 * 1024),
            "js": text(1024 * 1024),
            "block_ads": boolean,
            "block_trackers": boolean,
            "block_cookie_banners": boolean,
            "dark_mode": boolean,
            "reduced_motion": boolean,
            "user_agent": text(1024, single_line=True),
            "headers": headers,
            "headers_scope": choice(*HEADER_SCOPES),
            "cookies": cookies,
            "cache": boolean,
            "cache_ttl": integer(1, 2592000),
            "response_type": choice(*RESPONSE_TYPES),
            "webhook_url": http_url,
            "s3": s3_destination,
            "disable_animations": boolean,
            "fail_on_http_error": boolean,
            "timezone": timezone,
            "locale": locale,
            "geolocation": geolocation,
        }

    @classmethod
    def known_names(cls) -> list[str]:
        return sorted([*cls.parsers(), *NON_OPTION_NAMES])

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CaptureOptions:
        return cls._parse(dict(query.items()), source="query")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CaptureOptions:
        return cls._parse(dict(body), source="body")

    @classmethod
    def _parse(cls, raw: dict[str, Any], *, source: str) -> CaptureOptions:
        parsers = cls.parsers()
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name in NON_OPTION_NAMES:
                continue
            parser = parsers.get(name)
            if parser is None:
                problems[name] = "unknown parameter"
                continue
            if source == "query" and name in POST_ONLY:
                problems[name] = "only accepted in a POST JSON body"
                continue
            if value is None and source == "body":
                continue  # JSON null means "the default", as if the name were absent
            try:
                values[name] = parser(value)
            except Bad as bad:
                problems[name] = str(bad)
            except InvalidParameter as invalid:  # a nested object (s3) names its own fields
                problems.update(invalid.details.get("fields", {name: invalid.message}))
        cls._cross_check(values, problems)
        parsed = cls(**cls._apply_device(values))  # the fields given valid, defaults for the rest
        for name, why in parsed._bound_problems().items():
            problems.setdefault(name, why)
        if problems:
            unknown = any(p == "unknown parameter" for p in problems.values())
            raise InvalidParameter.fields(problems, cls.known_names() if unknown else None)
        return parsed

    @staticmethod
    def _cross_check(values: dict[str, Any], problems: dict[str, str]) -> None:
        if not values.get("url") and not values.get("html") and "url" not in problems and "html" not in problems:
            problems["url"] = "required (or html in a POST body)"
        for a, b, why in EXCLUSIVE:
            if _given(values, a) and _given(values, b):
                problems[a] = problems[b] = f"{a} and {b} cannot be combined: {why}"
        if _given(values, "html") and _given(values, "headers") and values.get("headers_scope", "origin") != "all":
            problems["headers"] = problems["html"] = ("headers with html need headers_scope=all: "
                                                      "html has no target origin to send them to")
        fmt = values.get("format", "png")
        if values.get("omit_background") and fmt in ("jpeg", "pdf"):
            problems["omit_background"] = problems["format"] = f"omit_background needs png or webp, not {fmt}"
        if fmt == "pdf":
            for name in ("selector", "clip"):
                if _given(values, name):
                    problems[name] = problems["format"] = f"{name} cannot be combined with format=pdf"

    @staticmethod
    def _apply_device(values: dict[str, Any]) -> dict[str, Any]:
        device = DEVICES.get(values.get("device") or "")
        if device is not None:
            for name, attr in PRESET_FIELDS.items():
                values.setdefault(name, getattr(device, attr))
        return values

    def _bound_problems(self) -> dict[str, str]:
        """The pixel budget and texture limit (bounds.py) on the areas known before the page loads:
        the viewport and a clip.  An element and a full page are measured at capture."""
        problems: dict[str, str] = {}
        if self.format == "pdf":
            return problems
        why = bounds.area_problem(self.width, self.height, self.device_scale_factor, self.format)
        if why is not None:
            for name in ("width", "height", "device_scale_factor", *(("device",) if self.device else ())):
                problems[name] = f"the viewport of {why}"
        if self.clip is not None:
            why = bounds.area_problem(self.clip.width, self.clip.height, self.device_scale_factor, self.format)
            if why is not None:
                problems["clip"] = f"the clip of {why}"
        return problems

    def with_changes(self, **changes: Any) -> CaptureOptions:
        return dataclasses.replace(self, **changes)

    @property
    def content_type(self) -> str:
        from ..storage.base import CONTENT_TYPES

        return CONTENT_TYPES[self.format]

    @property
    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def cache_fingerprint(self) -> str:
        """SHA-256 (hex) of everything that shapes the image, for reusing an identical capture.

        Device presets are already resolved into width/height/scale/user agent, so
        ``device=iphone_15`` and the same values given by hand differ only by the
        ``device`` name (which also decides mobile and touch).  Header names are
        case-insensitive and unordered, so they are normalised.
        """
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in NOT_IN_FINGERPRINT:
                continue
            value = getattr(self, f.name)
            if f.name == "headers":
                value = sorted((k.lower(), v) for k, v in value)
            elif f.name == "cookies":
                value = [dataclasses.asdict(c) for c in value]
            elif f.name == "clip" and value is not None:
                value = list(value)
            fields[f.name] = value
        canonical = json.dumps(["capture-v1", fields], sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _given(values: dict[str, Any], name: str) -> bool:
    value = values.get(name)
    return value is not None and value is not False and value != ()
