"""HTTP/1 message heads for the egress proxy: read strictly, pass on only end-to-end fields.

The proxy never looks at a body (one request per connection, ``Connection:
close`` both ways), so a head is all it has to understand.  Parsing is strict
on purpose: whatever this parser and a lenient origin could read differently
(obs-fold, bare LF, two message lengths) is refused rather than guessed, since
that gap is where request smuggling lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from http import HTTPStatus
from typing import NamedTuple

HEAD_LIMIT = 256 * 1024  # request/response head; Chromium itself allows 256 KiB of headers
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The mark on every answer the proxy gives itself instead of the origin's: ``refused`` (the
# egress policy or a block list said no), ``unreachable`` (the origin could not be
# resolved, connected to, or sent no valid response) or ``proxy`` (the capture's upstream proxy
# failed: egress/chain.py).  A capture reads it on the main
# document's response; the same field from an origin is dropped, so only the proxy sets it.
EGRESS_HEADER = "X-Screenshot-Egress"
REFUSED, UNREACHABLE, PROXY = "refused", "unreachable", "proxy"
# Hop-by-hop headers (RFC 9110 §7.6.1) plus the proxy's own; never forwarded.
_HOP_BY_HOP = frozenset(
    "connection keep-alive proxy-connection proxy-authorization proxy-authenticate te upgrade".split()
) | {EGRESS_HEADER.lower()}
# Framing stays whatever ``Connection`` says: the body is piped raw, so the origin must see it.
_KEEP = frozenset({"content-length", "transfer-encoding"})

Fields = list[tuple[str, str]]


class Request(NamedTuple):
    method: str
    target: str
    version: str
    fields: Fields


class Refused(Exception):
    """A request answered by the proxy itself (4xx/5xx) instead of the origin."""

    def __init__(self, status: int, text: str, *, verdict: str | None = None) -> None:
        super().__init__(text)
        self.status, self.text = status, text
        self.verdict = verdict  # REFUSED, UNREACHABLE, PROXY, or None (the client's request was malformed)


def split_head(head: bytes) -> tuple[str, Fields]:
    """Start line and header fields; raise ValueError on anything a strict parser would refuse."""
    start, *lines = head.decode("latin-1").split("\r\n")[:-2]
    fields: Fields = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"bad header line {line!r}")  # also refuses obs-fold and bare LF
        fields.append((name, value.strip(" \t")))
    return start, fields


def parse_request(head: bytes) -> Request:
    try:
        request_line, fields = split_head(head)
        method, target, version = request_line.split(" ")
    except ValueError:
        raise Refused(400, "malformed request") from None
    if not _TOKEN.fullmatch(method) or version not in ("HTTP/1.0", "HTTP/1.1"):
        raise Refused(400, "malformed request line")
    names = [name.lower() for name, _ in fields]
    lengths = {value for name, value in fields if name.lower() == "content-length"}
    if ("transfer-encoding" in names and lengths) or len(lengths) > 1:
        raise Refused(400, "ambiguous message length")  # the request-smuggling shape
    return Request(method, target, version, fields)


def end_to_end(fields: Fields) -> Fields:
    named = {t.strip().lower() for n, v in fields if n.lower() == "connection" for t in v.split(",")}
    drop = (_HOP_BY_HOP | named) - _KEEP
    return [(n, v) for n, v in fields if n.lower() not in drop]


def build_head(start: str, fields: Fields) -> bytes:
    lines = [start, *(f"{n}: {v}" for n, v in fields), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(writer: asyncio.StreamWriter, refused: Refused) -> None:
    body = (refused.text + "\n").encode()
    fields = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if refused.verdict is not None:
        fields.append((EGRESS_HEADER, refused.verdict))  # "policy" or "network", never the origin's page
    status = f"HTTP/1.1 {refused.status} {HTTPStatus(refused.status).phrase}"
    with contextlib.suppress(OSError):
        writer.write(build_head(status, fields) + body)
        await writer.drain()
