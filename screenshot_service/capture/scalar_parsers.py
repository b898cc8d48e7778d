"""Parsers of one plain value: a boolean, a number in a range, a name from a list, text, CSS
selectors.  parsers.py builds the structured ones on these and the option table takes all
of them from there.

Each takes what a query string (text) or a JSON body (typed values) gave and returns the typed
value or raises Bad; whatever the input (any JSON value, any text, huge or non-finite numbers,
lone surrogates), never anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ..strict_json import MAX_NUMBER_CHARS, has_surrogate


class Bad(ValueError):
    """One field's problem, phrased for the caller."""


class BadFields(Bad):
    """Problems with fields inside one option's object (``s3.bucket``…), each named."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in fields.items()))
        self.fields = fields


# C0 controls and DEL: line breaks and NUL belong in no header, cookie or single-line value.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def described(parse: Callable[[Any], Any], schema: dict[str, Any]) -> Callable[[Any], Any]:
    """Attach the JSON Schema of what ``parse`` accepts; /v1/openapi.json is built from it."""
    parse.schema = schema  # type: ignore[attr-defined]
    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Bad("must be a boolean (true/false/1/0)")


# Plain ASCII numerals, short enough to convert without Python's int digit limit: not "--5",
# "²" or "١٢" (which str.isdigit() or float() accept), nor 5000 digits.
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,18}")
_NUMBER_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")


def integer(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"must be an integer from {lo} to {hi}")
        if not lo <= value <= hi:
            raise Bad(f"must be from {lo} to {hi}, got {_shown(value)}")
        return value

    return described(parse, {"type": "integer", "minimum": lo, "maximum": hi})


def number(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        result = math.nan
        if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS and _NUMBER_TEXT.fullmatch(value.strip()):
            result = float(value.strip())
        elif isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            result = float(value) if abs(value) < 1e300 else math.inf  # float() of a huge int overflows
        if not math.isfinite(result):
            raise Bad(f"must be a number from {lo:g} to {hi:g}")
        if not lo <= result <= hi:
            raise Bad(f"must be from {lo:g} to {hi:g}, got {_shown(result)}")
        return result

    return described(parse, {"type": "number", "minimum": lo, "maximum": hi})


def _shown(value: int | float) -> str:
    """A number as an error message may quote it: never thousands of digits."""
    text = f"{value:g}" if isinstance(value, float) else str(value) if abs(value) < 10**18 else "a larger number"
    return text if len(text) <= 24 else text[:24] + "..."


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise Bad(f"must be one of {', '.join(choices)}")
        return value.lower()

    return described(parse, {"type": "string", "enum": list(choices)})


def text(max_len: int, *, utf8_bytes: bool = False, single_line: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad("must be a string")
        if has_surrogate(value):
            raise Bad("must be Unicode text (it holds a lone surrogate, like \\ud800)")
        size = len(value.encode("utf-8")) if utf8_bytes else len(value)
        if size > max_len:
            raise Bad(f"must be at most {max_len} {'bytes' if utf8_bytes else 'characters'}")
        if single_line and CONTROL.search(value):
            raise Bad("must not contain control characters")
        return value

    return described(parse, {"type": "string", "maxLength": max_len})


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
