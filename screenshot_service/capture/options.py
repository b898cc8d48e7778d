"""CaptureOptions: every capture option validated in one place (SPEC §3).

The same table parses a query string (everything is text) and a JSON body
(typed values).  Each problem is reported against its field name, all at once,
and unknown names are refused so that typos surface instead of being ignored.
Combinations that cannot both hold are reported against both names.  The value
parsers for compound values (clip, headers, cookies, selector lists) follow the table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from ..errors import InvalidParameter
from .devices import DEVICES

if TYPE_CHECKING:
    from ..storage.customer import CustomerS3

FORMATS = ("png", "jpeg", "webp", "pdf")
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle0", "networkidle2")
RESPONSE_TYPES = ("json", "base64", "image")
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


def _s3(value: Any) -> CustomerS3:
    # The storage module owns the shape of the s3 object; import late (it pulls in aioboto3).
    from ..storage.customer import CustomerS3

    return CustomerS3.from_json(value)


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
    cookies: tuple[Cookie, ...] = ()
    cache: bool = False
    cache_ttl: int = 86400
    response_type: str = "json"
    webhook_url: str | None = None
    s3: CustomerS3 | None = None

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
            "cookies": cookies,
            "cache": boolean,
            "cache_ttl": integer(1, 2592000),
            "response_type": choice(*RESPONSE_TYPES),
            "webhook_url": http_url,
            "s3": _s3,
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
        if problems:
            unknown = any(p == "unknown parameter" for p in problems.values())
            raise InvalidParameter.fields(problems, cls.known_names() if unknown else None)
        return cls(**cls._apply_device(values))

    @staticmethod
    def _cross_check(values: dict[str, Any], problems: dict[str, str]) -> None:
        if not values.get("url") and not values.get("html") and "url" not in problems and "html" not in problems:
            problems["url"] = "required (or html in a POST body)"
        for a, b, why in EXCLUSIVE:
            if _given(values, a) and _given(values, b):
                problems[a] = problems[b] = f"{a} and {b} cannot be combined: {why}"
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


# -- value types and parsers ---------------------------------------------------------------


class Bad(ValueError):
    """One field's problem, phrased for the caller."""


class Clip(NamedTuple):
    """A rectangle in CSS px of the page (not the viewport)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    path: str | None = None
    expires: float | None = None  # Unix seconds; None = a session cookie
    http_only: bool = False
    secure: bool = False
    same_site: str | None = None  # Strict | Lax | None

    def to_cdp(self, url: str) -> dict[str, Any]:
        """Network.setCookies form; ``url`` scopes it to the target's host and nothing else."""
        cookie: dict[str, Any] = {"name": self.name, "value": self.value, "url": url}
        optional = {"path": self.path, "expires": self.expires, "sameSite": self.same_site}
        cookie.update({k: v for k, v in optional.items() if v is not None})
        if self.http_only:
            cookie["httpOnly"] = True
        if self.secure:
            cookie["secure"] = True
        return cookie


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Headers the browser or the egress proxy owns; setting them would break framing or leak
# to third parties.  Cookie has its own option, scoped to the target's host.
_FORBIDDEN_HEADERS = frozenset(
    "host content-length connection transfer-encoding keep-alive upgrade te trailer expect cookie".split()
)
_COOKIE_KEYS = {"name", "value", "path", "expires", "http_only", "httpOnly", "secure", "same_site", "sameSite"}


def _described(parse: Callable[[Any], Any], schema: dict[str, Any]) -> Callable[[Any], Any]:
    """Attach the JSON Schema of what ``parse`` accepts; /v1/openapi.json is built from it."""
    parse.schema = schema  # type: ignore[attr-defined]
    return parse


def schema_of(parse: Callable[[Any], Any]) -> dict[str, Any]:
    """The JSON Schema of one option's parser (factories attach theirs; named parsers are below)."""
    return dict(getattr(parse, "schema", None) or PARSER_SCHEMAS[parse])


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Bad("must be a boolean (true/false/1/0)")


def integer(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"must be an integer from {lo} to {hi}")
        if not lo <= value <= hi:
            raise Bad(f"must be from {lo} to {hi}, got {value}")
        return value

    return _described(parse, {"type": "integer", "minimum": lo, "maximum": hi})


def number(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            result = float(value)
        except (TypeError, ValueError):
            result = math.nan
        if isinstance(value, bool) or not math.isfinite(result):
            raise Bad(f"must be a number from {lo:g} to {hi:g}")
        if not lo <= result <= hi:
            raise Bad(f"must be from {lo:g} to {hi:g}, got {value}")
        return result

    return _described(parse, {"type": "number", "minimum": lo, "maximum": hi})


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise Bad(f"must be one of {', '.join(choices)}")
        return value.lower()

    return _described(parse, {"type": "string", "enum": list(choices)})


def text(max_len: int, *, utf8_bytes: bool = False, single_line: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad("must be a string")
        size = len(value.encode("utf-8")) if utf8_bytes else len(value)
        if size > max_len:
            raise Bad(f"must be at most {max_len} {'bytes' if utf8_bytes else 'characters'}")
        if single_line and _CONTROL.search(value):
            raise Bad("must not contain control characters")
        return value

    return _described(parse, {"type": "string", "maxLength": max_len})


def http_url(value: Any) -> str:
    url = text(2048)(value).strip()
    # Only the shape is checked here; whether the host may be reached is the egress policy's call.
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise Bad("must be an http or https URL")
    return url


def selector(value: Any) -> str:
    result = text(1024, single_line=True)(value).strip()
    if not result:
        raise Bad("must be a non-empty CSS selector")
    return result


def selector_list(value: Any) -> tuple[str, ...]:
    """A JSON list, or the query string's comma-separated form.

    Commas inside brackets, parentheses or quotes (``:is(a, b)``, ``[title="a,b"]``)
    belong to a selector and do not split it.
    """
    items = _split_commas(value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or len(items) > 100:
        raise Bad("must be a list of at most 100 CSS selectors")
    try:
        return tuple(selector(item) for item in items if not (isinstance(item, str) and not item.strip()))
    except Bad as bad:
        raise Bad(f"each entry {bad}") from None


def _split_commas(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def clip(value: Any) -> Clip:
    shape = "must be x,y,width,height in px (or an object with those keys)"
    if isinstance(value, str):
        parts: list[Any] = value.split(",")
    elif isinstance(value, dict):
        if set(value) != {"x", "y", "width", "height"}:
            raise Bad(shape)
        parts = [value["x"], value["y"], value["width"], value["height"]]
    else:
        raise Bad(shape)
    if len(parts) != 4:
        raise Bad(shape)
    limits = ((0, 16384), (0, 65536), (1, 16384), (1, 16384))
    try:
        x, y, width, height = (integer(lo, hi)(part) for part, (lo, hi) in zip(parts, limits, strict=True))
    except Bad:
        raise Bad(f"{shape}; x 0-16384, y 0-65536, width and height 1-16384") from None
    return Clip(x, y, width, height)


def _json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise Bad(f"must be {what} (in a query string: as JSON text)") from None


def headers(value: Any) -> tuple[tuple[str, str], ...]:
    obj = _json(value, "a JSON object of header names to values")
    if not isinstance(obj, dict) or len(obj) > 50:
        raise Bad("must be a JSON object of at most 50 header names to string values")
    result = []
    for name, val in obj.items():
        if not _TOKEN.match(name):
            raise Bad(f"{name!r} is not a valid header name")
        if name.lower() in _FORBIDDEN_HEADERS or name.lower().startswith(("proxy-", "sec-")):
            raise Bad(f"{name} cannot be set (use the cookies option for cookies)")
        if not isinstance(val, str) or len(val) > 8192 or _CONTROL.search(val.replace("\t", " ")):
            raise Bad(f"{name}: value must be a string of at most 8192 characters without line breaks")
        result.append((name, val))
    return tuple(result)


def cookies(value: Any) -> tuple[Cookie, ...]:
    items = _json(value, "a JSON list of cookie objects")
    if not isinstance(items, list) or len(items) > 50:
        raise Bad("must be a list of at most 50 objects with name and value")
    return tuple(_cookie(index, item) for index, item in enumerate(items))


def _cookie(index: int, item: Any) -> Cookie:
    def bad(problem: str) -> Bad:
        return Bad(f"item {index}: {problem}")

    if not isinstance(item, dict):
        raise bad("must be an object with name and value")
    if "domain" in item or "url" in item:
        raise bad("domain and url are not accepted: cookies are set for the target URL's host only")
    unknown = sorted(set(item) - _COOKIE_KEYS)
    if unknown:
        raise bad(f"unknown field(s) {', '.join(unknown)}; known: name, value, path, expires, "
                  "http_only, secure, same_site")
    name, val = item.get("name"), item.get("value")
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise bad("name must be a non-empty token")
    if not isinstance(val, str) or len(val) > 4096 or ";" in val or _CONTROL.search(val):
        raise bad("value must be a string of at most 4096 characters without ';' or control characters")
    path = item.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or _CONTROL.search(path)):
        raise bad("path must start with /")
    expires = item.get("expires")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise bad("expires must be a Unix timestamp in seconds")
    same_site = item.get("same_site", item.get("sameSite"))
    if same_site is not None and same_site not in ("Strict", "Lax", "None"):
        raise bad("same_site must be Strict, Lax or None")
    try:
        http_only = boolean(item.get("http_only", item.get("httpOnly", False)))
        secure = boolean(item.get("secure", False))
    except Bad as flag:
        raise bad(f"http_only and secure {flag}") from None
    return Cookie(name, val, path, None if expires is None else float(expires), http_only, secure, same_site)


# JSON Schemas of the named parsers (the factories above attach their own).
PARSER_SCHEMAS: dict[Callable[[Any], Any], dict[str, Any]] = {
    boolean: {"type": "boolean"},
    http_url: {"type": "string", "format": "uri", "maxLength": 2048},
    selector: {"type": "string", "maxLength": 1024},
    selector_list: {"type": "array", "items": {"type": "string", "maxLength": 1024}, "maxItems": 100},
    clip: {"oneOf": [
        {"type": "string", "pattern": r"^\d+,\d+,\d+,\d+$", "description": "x,y,width,height"},
        {"type": "object", "required": ["x", "y", "width", "height"],
         "properties": {k: {"type": "integer", "minimum": 0} for k in ("x", "y", "width", "height")}},
    ]},
    headers: {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
    cookies: {"type": "array", "maxItems": 50, "items": {
        "type": "object", "required": ["name", "value"],
        "properties": {"name": {"type": "string"}, "value": {"type": "string"}, "path": {"type": "string"},
                       "expires": {"type": "number"}, "http_only": {"type": "boolean"},
                       "secure": {"type": "boolean"}, "same_site": {"type": "string", "enum": ["Strict", "Lax", "None"]}},
    }},
    _s3: {"type": "object", "required": ["bucket", "region", "access_key_id", "secret_access_key"],
          "properties": {"bucket": {"type": "string"}, "region": {"type": "string"},
                         "access_key_id": {"type": "string"}, "secret_access_key": {"type": "string"},
                         "endpoint_url": {"type": "string", "format": "uri"}, "key_prefix": {"type": "string"}}},
}
