"""Parse a target URL the way Chromium will, then hand Chromium our canonical form.

SSRF filters fail when the filter and the browser read one string two ways
(``http://good.com@127.0.0.1``, ``http://127.0.0.1\\@good.com``, ``0x7f.1``).
So this parser follows the WHATWG URL rules for everything that decides the
*host* (IPv4 number forms, UTS-46 mapping, trailing dots), refuses the
constructs where parsers traditionally disagree (userinfo, backslashes,
percent-encoding, whitespace in the authority), and returns a rebuilt URL: the
browser is given exactly the host that was checked.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna  # aiohttp -> yarl -> idna; the UTS-46 mapping Chromium applies to hosts

from screenshot_service.egress.errors import InvalidUrl

MAX_URL_LENGTH = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?")  # LDH plus '_', which real hosts use
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
# Printable ASCII minus what WHATWG percent-encodes in a path; "%" stays so that
# existing escapes survive.  Everything else (space, non-ASCII) is encoded.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>`{}')

_Bad = Callable[[str], InvalidUrl]  # the local ``bad`` helper, passed to the split-out steps


@dataclass(frozen=True)
class TargetUrl:
    url: str  # canonical form, what the browser is given
    scheme: str  # "http" or "https"
    host: str  # lower-case A-label name, or canonical IP text (no brackets)
    port: int  # explicit or the scheme default
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # set when the host is an IP literal

    @property
    def authority(self) -> str:
        """``host[:port]`` as it belongs in a URL or a Host header (port only when not the default)."""
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_target_url(raw: str, *, what: str = "url", max_length: int = MAX_URL_LENGTH) -> TargetUrl:
    """Validate and canonicalise ``raw``; raise ``InvalidUrl`` naming ``what`` and the problem."""

    def bad(problem: str) -> InvalidUrl:
        return InvalidUrl(f"{what} {problem}", details={"field": what})

    if not isinstance(raw, str) or not raw.strip():
        raise bad("must be a non-empty http or https URL")
    if len(raw) > max_length:
        raise bad(f"is longer than {max_length} characters")
    text = raw.strip(" \t\r\n\f\v")  # what WHATWG strips from both ends (plus the usual whitespace)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise bad("contains control characters (tab, newline, ...)")

    scheme_text, colon, rest = text.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme_text):
        raise bad("must start with http:// or https://")
    scheme = scheme_text.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad(f"scheme {scheme!r} is not allowed; use http or https")
    if not rest.startswith("//") or rest[2:3] in ("/", "\\"):
        # WHATWG reads "http:host", "http:/host", "http:\\host" and "http:///host" as
        # http://host; refusing them keeps one obvious spelling.
        raise bad("must have the form http://host/... or https://host/...")

    rest = rest[2:]
    end = next((i for i, c in enumerate(rest) if c in "/?#\\"), len(rest))
    authority, tail = rest[:end], rest[end:]
    if tail.startswith("\\") or "\\" in tail.partition("?")[0].partition("#")[0]:
        raise bad("contains a backslash")  # browsers read it as '/', other parsers do not
    host, port = _split_authority(authority, scheme, bad)
    ip, host = _parse_host(host, bad)

    tail = quote(tail, safe=_SAFE)
    if not tail.startswith("/"):
        tail = "/" + tail
    target = TargetUrl("", scheme, host, port, ip)
    return dataclasses.replace(target, url=f"{scheme}://{target.authority}{tail}")


def _split_authority(authority: str, scheme: str, bad: _Bad) -> tuple[str, int]:
    if "@" in authority:
        raise bad("must not contain user info (user@host); it is a classic way to disguise the host")
    if "%" in authority:
        raise bad("must not percent-encode the host or port (%); zone ids are not allowed either")
    if any(c.isspace() for c in authority):
        raise bad("contains whitespace in the host")
    if authority.startswith("["):
        inside, sep, after = authority[1:].partition("]")
        if not sep or (after and not after.startswith(":")):
            raise bad("has a malformed [IPv6] host")
        host, port_text = "[" + inside + "]", (after[1:] if after else "")
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise bad("has no host")
    if not port_text:  # WHATWG: "host:" means the default port
        return host, DEFAULT_PORTS[scheme]
    significant = port_text.lstrip("0")  # WHATWG allows leading zeros; int() refuses 5000 digits
    if len(significant) > 5 or not port_text.isascii() or not port_text.isdigit() or not 1 <= int(significant or "0") <= 65535:
        raise bad(f"has an invalid port {port_text[:20]!r}; expected 1-65535")
    return host, int(significant)


def _parse_host(host: str, bad: _Bad) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, str]:
    if host.startswith("["):
        try:
            v6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise bad(f"has an invalid IPv6 address {host}") from None
        return v6, str(v6)
    if not host.isascii():
        # UTS-46 maps full-width digits and ideographic dots (U+FF11, U+3002) to
        # ASCII before the IPv4 rules run, so must we.
        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except idna.IDNAError:
            raise bad(f"has a host that is not a valid international domain name: {host!r}") from None
    host = host.lower()
    v4 = _parse_ipv4(host, bad)
    if v4 is not None:
        return v4, str(v4)
    name = host[:-1] if host.endswith(".") else host  # "localhost." is localhost
    labels = name.split(".")
    try:
        labels = [label if label.isascii() else idna.alabel(label).decode("ascii") for label in labels]
    except (idna.IDNAError, UnicodeError):
        raise bad(f"has a host that is not a valid international domain name: {host!r}") from None
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(x) and len(x) <= 63 for x in labels):
        raise bad(f"has an invalid host name {host!r}")
    return None, ".".join(labels)


def _parse_ipv4(host: str, bad: _Bad) -> ipaddress.IPv4Address | None:
    """WHATWG IPv4 parser: None for a host name; an address for 2130706433, 0x7f.1, 0177.0.0.1..."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed
    # "Ends in a number": only then is the host an IPv4 address (and must parse as one).
    if not parts or not _IPV4_PART.fullmatch(parts[-1]):
        return None
    if len(parts) > 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        raise bad(f"has a host that looks like an IPv4 address but is not one: {host!r}")
    if any(len(part) > 40 for part in parts):  # beyond 2**32 whatever the base; int() would refuse 5000 digits
        raise bad(f"has an out-of-range IPv4 address {host!r}")
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise bad(f"has an invalid octal number in the IPv4 address {host!r}")
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise bad(f"has an out-of-range IPv4 address {host!r}")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading))
    return ipaddress.IPv4Address(value)


def host_of(url: object) -> str:
    """The host of a caller's URL, for logs (never the full URL); "" when there is none to read."""
    if not isinstance(url, str):
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1" and the like: the URL check names the problem later
        return ""


def origin_of(url: str) -> str | None:
    """The web origin as Chromium writes it, ``scheme://host[:port]`` (the default port left out), of an http(s) ``url``; None for any other (opaque ``null``/``://``, about:)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"
