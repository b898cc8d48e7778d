"""JSON request bodies parsed defensively: anyone may send one, before any key is known.

Python's ``json`` turns hostile input into exceptions that are not
``JSONDecodeError`` (``[`` x 100000 is a RecursionError, a 5000-digit integer
a ValueError from the int digit limit) or into values no option accepts
(``1e999999`` is inf, ``NaN`` and ``Infinity`` parse although they are not
JSON).  Each is answered here with a 400 that says what is wrong:

* nesting deeper than ``MAX_DEPTH`` is ``malformed_body``, found by a scan that
  skips strings, *before* the parser recurses;
* a number longer than ``MAX_NUMBER_CHARS``, or one that is not finite, is
  ``invalid_parameter`` naming the field it sits in (``malformed_body`` when it
  is the whole body): the parse hooks leave a marker instead of converting it.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ..errors import InvalidParameter, MalformedBody, Overloaded

# The deepest option is a list of objects (cookies): 3 levels.  32 leaves room and
# keeps every later walk of the body far from the recursion limit.
MAX_DEPTH = 32
# No option needs more than ~10 digits; 40 characters fits any sane float with exponent.
MAX_NUMBER_CHARS = 40

# A JSON string ("..." with backslash escapes), unrolled so it matches in linear time.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


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


# Defined beside its type (api/ owns it), like appkeys.METRICS.
UNAUTHENTICATED_READS = web.AppKey("unauthenticated_reads", UnauthenticatedReads)


class _BadNumber:
    """Left in place of a number that must not be converted; ``why`` names the problem."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or ``MalformedBody`` / ``InvalidParameter`` saying what is wrong."""
    if not raw.strip():
        raise MalformedBody("the request body is empty; send a JSON object")
    if _too_deep(raw):
        raise MalformedBody(
            f"the request body nests arrays/objects more than {MAX_DEPTH} levels deep",
            details={"max_depth": MAX_DEPTH},
        )
    try:
        body = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # the depth scan makes this unreachable; kept as a backstop
        raise MalformedBody(f"the request body nests more than {MAX_DEPTH} levels deep") from None
    if isinstance(body, _BadNumber):
        raise MalformedBody(f"the request body must be a JSON object, and is a number with {body.why}")
    if not isinstance(body, dict):
        raise MalformedBody("the request body must be a JSON object")
    problems = {path: f"a number with {bad.why}" for path, bad in _bad_numbers(body, "")}
    if problems:
        raise InvalidParameter.fields(problems)
    return body


def _too_deep(raw: bytes) -> bool:
    """Do arrays/objects nest more than ``MAX_DEPTH`` deep (strings skipped)?  No recursion, and
    C-speed passes: a per-byte Python loop over 3 MB of ``[]`` would hold the event loop ~0.2 s."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw)).replace(b"{", b"[").replace(b"}", b"]")
    if b"[" * (MAX_DEPTH + 1) in brackets:  # the usual attack, found at once
        return True
    for _ in range(MAX_DEPTH):  # each pass removes the innermost level of every nest
        shorter = brackets.replace(b"[]", b"")
        if shorter == brackets:
            break
        brackets = shorter
    # A pair still left after MAX_DEPTH passes sat deeper than that.  Otherwise what is left is
    # unbalanced (invalid JSON, for the parser to name), e.g. "]]" or "[[" (too deep if long).
    return b"[]" in brackets or brackets.count(b"[") > MAX_DEPTH


def _int(text: str) -> int | _BadNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return _BadNumber(f"{len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float | _BadNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return _BadNumber(f"{len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        return _BadNumber(f"a magnitude beyond a 64-bit float ({text[:20]})")
    return value


def _constant(text: str) -> _BadNumber:
    return _BadNumber(f"the value {text}, which is not JSON (numbers must be finite)")


def _bad_numbers(value: Any, path: str) -> list[tuple[str, _BadNumber]]:
    """Every marker in ``value`` with its field path (``s3.region``, ``cookies[0].expires``)."""
    if isinstance(value, _BadNumber):
        return [(path, value)]
    found: list[tuple[str, _BadNumber]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _bad_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _bad_numbers(item, f"{path}[{index}]")
    return found
