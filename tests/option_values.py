"""Hypothesis strategies for what a caller may send as one option: valid, nearly valid and hostile.

Nearly valid values come from the option's own JSON Schema (the one /v1/openapi.json
shows), so a new option is covered without editing anything here; hostile ones are any
JSON value (nested lists and objects, NaN, inf, huge integers, lone surrogates) and any
text (every Unicode category, numerals that str.isdigit() or float() take, thousands
of digits).  Three forms: Python values for the parsers, query text for a GET, JSON
text for a POST body (which also carries what json.dumps cannot write: 5000-digit
numbers and 1e400).
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from screenshot_service.signing import query_value

# Characters parsers trip on, made as likely as the rest of Unicode (hypothesis favours ASCII):
# lone surrogates, NUL, line breaks, a byte-order mark, digits str.isdigit() takes and int() does not.
_AWKWARD = st.sampled_from(["\ud800", "\udfff", "\x00", "\n", "\r", "\u2028", "\ufeff", "\u00b2", "\u0661", "é", "😀"])
# Every Unicode category, lone surrogates (Cs) included, with the awkward ones spliced in.
ANY_TEXT = st.lists(st.text(st.characters(exclude_categories=()), max_size=6) | _AWKWARD, max_size=5).map("".join)
# What a URL can carry: its bytes are decoded as UTF-8 by the server, so no lone surrogates.
URL_TEXT = ANY_TEXT.map(lambda text: text.encode("utf-8", "replace").decode("utf-8"))
# Text shaped like a URL, with the characters that split one ambiguously: brackets, '@', '%', '\\'.
URLISH = st.builds(
    "{}://{}{}".format, st.sampled_from(["http", "https", "HTTP", "ftp", "javascript"]),
    st.text(st.sampled_from("[]:@%.0123456789abcx/\\-"), max_size=12) | ANY_TEXT, st.sampled_from(["", "/", "/p?q#f"]),
)
# Numerals that look numeric to str.isdigit(), float() or a careless split: "--5", "²", "١٢", "1,2,,3".
NUMERALS = st.from_regex(r"[-+]{0,2}[0-9\u00b2\u0661\u0663.,eE_ ]{0,14}", fullmatch=True)
LONG_DIGITS = st.integers(4301, 6000).map(lambda n: "9" * n)  # past Python's int digit limit (4300)
HUGE_INTS = st.integers(4400, 5000).map(lambda n: 10**n) | st.integers(4400, 5000).map(lambda n: -(10**n))
# JSON text nested past any sane depth and past Python's recursion limit (~1000), yet short
# enough for a request line (8190 bytes, with "[" sent as %5B).
DEEP_TEXT = st.integers(30, 1200).map(lambda n: "[" * n + "]" * n) | st.integers(30, 1200).map(lambda n: '{"a":' * n)

_HOSTILE = LONG_DIGITS | DEEP_TEXT | HUGE_INTS
# Room for one value in a request line (aiohttp reads 8190 bytes; an over-long line is not a parser's matter).
_QUERY_VALUE_MAX = 7000
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | NUMERALS | ANY_TEXT | HUGE_INTS
# Any JSON value json.dumps can write (floats include NaN and the infinities).
JSON_VALUES = st.recursive(
    _SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT, kids, max_size=4), max_leaves=8
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped by a JSON Schema (the subset the option schemas use), at and past its bounds."""
    if "oneOf" in schema:
        return st.one_of([from_schema(option) for option in schema["oneOf"]])
    if "enum" in schema:
        names = list(schema["enum"])
        return st.sampled_from(names) | st.sampled_from(names).map(str.upper)
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans() | st.sampled_from(["true", "false", "1", "0", "TRUE", "yes"])
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        near = st.integers(int(lo) - 2, int(hi) + 2)
        return near | st.floats(lo - 1, hi + 1) if kind == "number" else near
    if kind == "string":
        examples = st.sampled_from(schema["examples"]) if "examples" in schema else st.nothing()
        pattern = st.from_regex(schema["pattern"]) if "pattern" in schema else st.nothing()
        return examples | pattern | ANY_TEXT | URLISH
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object":
        properties = {name: from_schema(sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        extras = st.dictionaries(ANY_TEXT, from_schema(extra), max_size=3) if isinstance(extra, dict) else st.just({})
        shaped = st.fixed_dictionaries({}, optional=properties) if properties else st.just({})
        return st.builds(lambda a, b: {**a, **b}, shaped, extras)
    return JSON_VALUES


def python_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """What a parser may be handed: a JSON body's value or a query's text, for this schema or none."""
    return _either(from_schema(schema), ANY_TEXT, JSON_VALUES, _HOSTILE)


def query_texts(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """One query parameter's value (what a GET can carry)."""
    sendable = from_schema(schema).map(_query_text).filter(_utf8)
    texts = _either(sendable, URL_TEXT, NUMERALS, JSON_VALUES.map(_json_text).filter(_utf8), LONG_DIGITS | DEEP_TEXT)
    return texts.filter(lambda text: len(quote(text)) <= _QUERY_VALUE_MAX)


def json_texts(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """One field's value in a POST body, as JSON text (surrogates as \\ud800 escapes, NaN, 1e400...)."""
    raw_numbers = st.sampled_from(["1e400", "-1e400", "NaN", "-Infinity", "1" + "0" * 5000, "0." + "1" * 5000])
    return _either(from_schema(schema).map(_json_text), JSON_VALUES.map(_json_text), raw_numbers | DEEP_TEXT)


def _either(*strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of ``strategies``, each as likely as the others (``a | b`` flattens nested unions, so a
    branch holding five alternatives would be drawn five times as often)."""
    return st.sampled_from(strategies).flatmap(lambda chosen: chosen)


def _json_text(value: Any) -> str:
    """json.dumps, which refuses integers past Python's digit limit: those (powers of ten) are spelled out."""
    huge: list[str] = []

    def spell(item: Any) -> Any:
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 10**4000:
            huge.append(("-" if item < 0 else "") + "1" + "0" * round(math.log10(abs(item))))
            return _HUGE
        if isinstance(item, list):
            return [spell(x) for x in item]
        if isinstance(item, dict):
            return {key: spell(x) for key, x in item.items()}
        return item

    text = json.dumps(spell(value))
    for digits in huge:
        text = text.replace(json.dumps(_HUGE), digits, 1)
    return text


def _query_text(value: Any) -> str:
    """A value in the spelling a query string uses for it (signing.query_value's), huge integers included."""
    if isinstance(value, dict) or (isinstance(value, int) and not isinstance(value, bool)):
        return _json_text(value)
    if isinstance(value, list):
        return ",".join(_query_text(item) for item in value)
    return query_value(value)


_HUGE = "\x00huge\x00"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
