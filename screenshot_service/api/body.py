"""JSON request bodies parsed defensively: anyone may send one, before any key is known.

strict_json decodes the body; here its refusals become HTTP answers: text that is
not JSON, nesting too deep and lone surrogate escapes are ``malformed_body``; a
number too long to convert, or one that is not finite, is ``invalid_parameter`` naming the field it sits in (``malformed_body``
when it is the whole body).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ..errors import InvalidParameter, MalformedBody, Overloaded
from ..strict_json import BadNumber, Refused, bad_numbers, loads


class UnauthenticatedReads:
    """How many requests are reading a body before their key is known; at most ``limit``.

    Such a request holds no place in the browser pool, but it holds a connection and up to
    ``server.max_body_bytes`` of buffer until its body arrives or times out, and anyone can
    send one.  Past the bound: 503 at once.  A key sent in a header is checked before the
    body is read, so keyed requests never wait behind this.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reading = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.reading >= self.limit:
            raise Overloaded(
                f"{self.limit} requests are already sending a body before their key is known; "
                "send the key in Authorization: Bearer or X-API-Key to skip this bound",
                retry_after=1,
                details={"max_unauthenticated": self.limit},
            )
        self.reading += 1
        try:
            yield
        finally:
            self.reading -= 1


# Defined beside its type (api/ owns it).
UNAUTHENTICATED_READS = web.AppKey("unauthenticated_reads", UnauthenticatedReads)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or ``MalformedBody`` / ``InvalidParameter`` saying what is wrong."""
    if not raw.strip():
        raise MalformedBody("the request body is empty; send a JSON object")
    try:
        body = loads(raw)
    except Refused as refused:
        raise MalformedBody(f"the request body {refused}", details=refused.details) from None
    if isinstance(body, BadNumber):
        raise MalformedBody(f"the request body must be a JSON object, and is a number with {body.why}")
    if not isinstance(body, dict):
        raise MalformedBody("the request body must be a JSON object")
    problems = {path: f"a number with {bad.why}" for path, bad in bad_numbers(body)}
    if problems:
        raise InvalidParameter.fields(problems)
    return body
