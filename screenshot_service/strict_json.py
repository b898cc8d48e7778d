"""JSON text from strangers, decoded without surprises: a request body, or an option's JSON in a query.

Python's ``json`` turns hostile input into exceptions that are not
``JSONDecodeError`` (``[`` x 100000 is a RecursionError, a 5000-digit integer
a ValueError from the int digit limit), into values no option accepts
(``1e999999`` is inf, ``NaN`` and ``Infinity`` parse although they are not
JSON), or into strings no encoder takes back (``"\\ud800"`` is a lone
surrogate).  Here:

* nesting deeper than ``MAX_DEPTH``, text that is not JSON, lone surrogates
  (in keys or values) and a name given twice in one object (which of the two
  was meant?) raise ``Refused``; the depth is found by a scan that skips
  strings, *before* the parser recurses;
* a number longer than ``MAX_NUMBER_CHARS``, or one that is not finite, is left
  in place as a ``BadNumber`` marker, which ``bad_numbers`` finds with the path
  of the field it sits in, so the caller can name that field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# The deepest option is a list of objects (cookies): 3 levels.  32 leaves room and
# keeps every later walk of the value far from the recursion limit.
MAX_DEPTH = 32
# No option needs more than ~10 digits; 40 characters fits any sane float with exponent.
MAX_NUMBER_CHARS = 40

# A JSON string ("..." with backslash escapes), unrolled so it matches in linear time.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Refused(ValueError):
    """The text is not JSON this service reads; the message says why (``details``: the limit hit)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class BadNumber:
    """Left in place of a number that must not be converted; ``why`` names the problem."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def has_surrogate(text: str) -> bool:
    """Does ``text`` hold a lone surrogate (which UTF-8, and so Chromium and the logs, cannot carry)?"""
    return _SURROGATE.search(text) is not None


def loads(raw: bytes | str) -> Any:
    """``raw`` decoded, with ``BadNumber`` markers for the numbers it must not convert; or ``Refused``."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if _too_deep(data):
        raise Refused(f"nests arrays/objects more than {MAX_DEPTH} levels deep", {"max_depth": MAX_DEPTH})
    try:
        value = json.loads(
            data, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_unique_names
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"is not valid JSON: {exc}") from None
    except RecursionError:  # the depth scan makes this unreachable; kept as a backstop
        raise Refused(f"nests more than {MAX_DEPTH} levels deep", {"max_depth": MAX_DEPTH}) from None
    if _holds_surrogate(value):
        raise Refused("holds a lone surrogate escape (like \\ud800), which is not Unicode text")
    return value


def bad_numbers(value: Any, path: str = "") -> list[tuple[str, BadNumber]]:
    """Every marker in ``value`` with its field path (``s3.region``, ``cookies[0].expires``)."""
    if isinstance(value, BadNumber):
        return [(path, value)]
    found: list[tuple[str, BadNumber]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += bad_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += bad_numbers(item, f"{path}[{index}]")
    return found


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        shown = twice if len(twice) <= 60 and not has_surrogate(twice) else ascii(twice)[:60]
        raise Refused(f"gives the name {shown!r} more than once in one object", {"repeated": shown})
    return obj


def _holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return has_surrogate(value)
    if isinstance(value, dict):
        return any(has_surrogate(key) or _holds_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_surrogate(item) for item in value)
    return False


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


def _int(text: str) -> int | BadNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return BadNumber(f"{len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float | BadNumber:
    if len(text) > MAX_NUMBER_CHARS:
        return BadNumber(f"{len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        return BadNumber(f"a magnitude beyond a 64-bit float ({text[:20]})")
    return value


def _constant(text: str) -> BadNumber:
    return BadNumber(f"the value {text}, which is not JSON (numbers must be finite)")
