"""What the service's page scripts answer, type-checked before Python uses it.

The scripts run in an isolated world (browser/isolated_world.py), but what they
read is the page's DOM, and JSON from a page is still input: a number may be
NaN or huge, a string long, a record short of a key.  Each reader returns the
value in the type and range the caller needs or raises ``UnexpectedAnswer``,
a ``ScriptError``: every caller already treats a failed page script as such (a
check skipped, a condition unmet, a clear 4xx), never as a ``TypeError`` in
Python, which would be a 500.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..browser.driver_errors import ScriptError

COORDINATE = 2**31  # CSS px: beyond this no page coordinate is meant


class UnexpectedAnswer(ScriptError):
    """A page script answered something of the wrong type or range."""


def number(value: Any, *, low: float, high: float, what: str = "value") -> float:
    """A finite number in [low, high] (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UnexpectedAnswer(f"{what}: expected a number, got {_kind(value)}")
    if not low <= value <= high:
        raise UnexpectedAnswer(f"{what}: {value:g} is outside [{low:g}, {high:g}]")
    return float(value)


def integer(value: Any, *, low: int, high: int, what: str = "value") -> int:
    """A whole number in [low, high]; a float with no fraction counts (JSON does not tell them apart)."""
    checked = number(value, low=low, high=high, what=what)
    if not checked.is_integer():
        raise UnexpectedAnswer(f"{what}: expected a whole number, got {checked:g}")
    return int(checked)


def text(value: Any, *, limit: int, what: str = "value") -> str:
    """A string, cut to ``limit`` characters."""
    if not isinstance(value, str):
        raise UnexpectedAnswer(f"{what}: expected a string, got {_kind(value)}")
    return value[:limit]


def record(value: Any, keys: Sequence[str], *, what: str = "answer") -> dict[str, Any]:
    """An object with at least ``keys`` (their values are checked by the caller)."""
    if not isinstance(value, dict):
        raise UnexpectedAnswer(f"{what}: expected an object, got {_kind(value)}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise UnexpectedAnswer(f"{what}: no {', '.join(missing)}")
    return value


def integers(value: Any, length: int, *, low: int, high: int, what: str = "answer") -> tuple[int, ...]:
    """A list of exactly ``length`` whole numbers, each in [low, high]."""
    if not isinstance(value, list) or len(value) != length:
        raise UnexpectedAnswer(f"{what}: expected a list of {length} numbers, got {_kind(value)}")
    return tuple(integer(item, low=low, high=high, what=what) for item in value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "null" if value is None else type(value).__name__


def first_line(error: object) -> str:
    """The first line of an error's text, at most 300 characters (what an answer or log quotes)."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "error"


def thrown(details: dict[str, Any]) -> str:
    """What a page-world script threw, from DevTools' ``exceptionDetails``: its first line."""
    exception = details.get("exception") or {}
    return first_line(exception.get("description") or exception.get("value") or details.get("text") or "error")
