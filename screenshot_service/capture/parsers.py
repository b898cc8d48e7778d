"""Value parsers shared by the option table in option_table.py (the plain ones, re-exported here, are
in scalar_parsers.py; this module adds the structured ones: clip, headers, cookies, geolocation...).

Each takes what a query string (text) or a JSON body (typed values) gave for one
option and returns the typed value, or raises Bad with a message naming the
problem, phrased for the caller.  Each also carries the JSON Schema of what it
accepts (attached by the factories, or in PARSER_SCHEMAS), which the OpenAPI
document is built from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..strict_json import Refused, bad_numbers, has_surrogate, loads
from .scalar_parsers import CONTROL, Bad, BadFields, boolean, integer, number, selector, selector_list, text
from .scalar_parsers import choice as choice  # for the option table, which takes every parser from here

if TYPE_CHECKING:
    from ..storage.customer import CustomerS3


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
# Headers the browser or the egress proxy owns; setting them would break framing or leak
# to third parties.  Cookie has its own option, scoped to the target's host.
_FORBIDDEN_HEADERS = frozenset(
    "host content-length connection transfer-encoding keep-alive upgrade te trailer expect cookie".split()
)
# 9999-12-31T23:59:59Z: later than any cookie needs, and a float keeps it exact.
_LAST_EXPIRES = 253402300799
_COOKIE_KEYS = {"name", "value", "path", "expires", "http_only", "httpOnly", "secure", "same_site", "sameSite"}


def schema_of(parse: Callable[[Any], Any]) -> dict[str, Any]:
    """The JSON Schema of one option's parser (factories attach theirs; named parsers are below)."""
    return dict(getattr(parse, "schema", None) or PARSER_SCHEMAS[parse])


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


def json_value(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        decoded = loads(value)
    except Refused as refused:
        raise Bad(f"must be {what} (in a query string: as JSON text; this {refused})") from None
    for path, bad in bad_numbers(decoded)[:1]:
        raise Bad(f"must be {what}; {path or 'the value'} is a number with {bad.why}")
    return decoded


def headers(value: Any) -> tuple[tuple[str, str], ...]:
    obj = json_value(value, "a JSON object of header names to values")
    if not isinstance(obj, dict) or len(obj) > 50:
        raise Bad("must be a JSON object of at most 50 header names to string values")
    result = []
    for name, val in obj.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise Bad(f"{_quoted(name)} is not a valid header name")
        if name.lower() in _FORBIDDEN_HEADERS or name.lower().startswith(("proxy-", "sec-")):
            raise Bad(f"{name} cannot be set (use the cookies option for cookies)")
        if not isinstance(val, str) or len(val) > 8192 or CONTROL.search(val.replace("\t", " ")) \
                or has_surrogate(val):
            raise Bad(f"{name}: value must be a string of at most 8192 characters without line breaks")
        result.append((name, val))
    return tuple(result)


def _quoted(name: Any) -> str:
    """A caller's name as an error message may quote it: short, and printable."""
    text = ascii(name)
    return text if len(text) <= 60 else text[:60] + "..."


def cookies(value: Any) -> tuple[Cookie, ...]:
    items = json_value(value, "a JSON list of cookie objects")
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
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise bad("name must be a non-empty token")
    if not isinstance(val, str) or len(val) > 4096 or ";" in val or CONTROL.search(val) or has_surrogate(val):
        raise bad("value must be a string of at most 4096 characters without ';' or control characters")
    path = item.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or len(path) > 1024
                             or CONTROL.search(path) or ";" in path or has_surrogate(path)):
        raise bad("path must start with / and be at most 1024 characters without ';' or control characters")
    expires = item.get("expires")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)
                                or not 0 <= expires <= _LAST_EXPIRES):
        raise bad(f"expires must be a Unix timestamp in seconds, from 0 to {_LAST_EXPIRES}")
    same_site = item.get("same_site", item.get("sameSite"))
    if same_site is not None and (not isinstance(same_site, str) or same_site not in ("Strict", "Lax", "None")):
        raise bad("same_site must be Strict, Lax or None")
    try:
        http_only = boolean(item.get("http_only", item.get("httpOnly", False)))
        secure = boolean(item.get("secure", False))
    except Bad as flag:
        raise bad(f"http_only and secure {flag}") from None
    return Cookie(name, val, path, None if expires is None else float(expires), http_only, secure, same_site)


class Geolocation(NamedTuple):
    """An emulated position: degrees, and accuracy in metres."""

    latitude: float
    longitude: float
    accuracy: float = 100.0


def timezone(value: Any) -> str:
    """An IANA zone name the tz database knows (``Europe/Paris``); Chromium's ICU checks it again.

    Without a tz database on this host (a slim image without tzdata), only the shape
    is checked here and the browser's refusal is the 400 (capture/emulation.py).
    """
    name = text(64, single_line=True)(value).strip()
    zones = _zone_names()
    if (name not in zones) if zones else not _ZONE_SHAPE.fullmatch(name):
        raise Bad(f"{_quoted(name)} is not an IANA time zone name (like Europe/Paris or America/New_York)")
    return name


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        import zoneinfo

        found = zoneinfo.available_timezones()
        _ZONES = frozenset(found) | {"UTC"} if found else frozenset()
    return _ZONES


_ZONES: frozenset[str] | None = None
_ZONE_SHAPE = re.compile(r"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+\-]+){1,2})$")
# BCP 47 as browsers take it: an ISO 639 language, optional script, region and variants (no extensions).
_LOCALE = re.compile(r"^([a-z]{2,3})(-[a-z]{4})?(-(?:[a-z]{2}|[0-9]{3}))?(-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*$",
                     re.IGNORECASE)


def locale(value: Any) -> str:
    """A BCP 47 language tag, returned in its canonical case (``de-DE``, ``zh-Hant-TW``)."""
    tag = text(64, single_line=True)(value).strip().replace("_", "-")
    if not _LOCALE.fullmatch(tag):
        raise Bad(f"{_quoted(tag)} is not a BCP 47 language tag (like en-US, de-DE or zh-Hant-TW)")
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha() and len(out) == 1:
            out.append(part.title())  # script
        elif len(part) == 2 or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)


def geolocation(value: Any) -> Geolocation:
    shape = "must be {latitude, longitude, accuracy?} (JSON) or lat,lon[,accuracy] (query)"
    if isinstance(value, str):
        parts: list[Any] = [p.strip() for p in value.split(",")]
        if len(parts) not in (2, 3):
            raise Bad(shape)
    elif isinstance(value, dict):
        unknown = set(value) - {"latitude", "longitude", "accuracy"}
        if unknown or "latitude" not in value or "longitude" not in value:
            raise Bad(shape)
        parts = [value["latitude"], value["longitude"]] + ([value["accuracy"]] if "accuracy" in value else [])
    else:
        raise Bad(shape)
    limits = (("latitude", -90, 90), ("longitude", -180, 180), ("accuracy", 0, 100000))
    numbers = []
    for part, (name, lo, hi) in zip(parts, limits, strict=False):
        try:
            numbers.append(number(lo, hi)(part))
        except Bad:
            raise Bad(f"{shape}; {name} must be a number from {lo} to {hi}") from None
    return Geolocation(*numbers)


def s3_destination(value: Any) -> CustomerS3:
    # The storage module owns the shape of the s3 object; import late (it pulls in aioboto3).
    from ..storage.customer import CustomerS3
    from ..storage.errors import BucketRejected

    try:
        return CustomerS3.from_json(value)
    except BucketRejected as rejected:
        raise BadFields(rejected.fields) from None


# JSON Schemas of the named parsers (the factories above attach their own).
PARSER_SCHEMAS: dict[Callable[[Any], Any], dict[str, Any]] = {
    boolean: {"type": "boolean"},
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
    timezone: {"type": "string", "maxLength": 64, "examples": ["Europe/Paris"]},
    locale: {"type": "string", "maxLength": 64, "examples": ["de-DE"]},
    geolocation: {"oneOf": [
        {"type": "string", "pattern": r"^-?[\d.]+,-?[\d.]+(,[\d.]+)?$", "description": "lat,lon[,accuracy]"},
        {"type": "object", "required": ["latitude", "longitude"], "additionalProperties": False,
         "properties": {"latitude": {"type": "number", "minimum": -90, "maximum": 90},
                        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                        "accuracy": {"type": "number", "minimum": 0, "maximum": 100000}}},
    ]},
    s3_destination: {"type": "object", "required": ["bucket", "region", "access_key_id", "secret_access_key"],
          "properties": {"bucket": {"type": "string"}, "region": {"type": "string"},
                         "access_key_id": {"type": "string"}, "secret_access_key": {"type": "string"},
                         "endpoint_url": {"type": "string", "format": "uri"}, "key_prefix": {"type": "string"}}},
}
