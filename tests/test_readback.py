"""Whatever JSON a page script answers, a reader gives the type and range asked for or UnexpectedAnswer.

UnexpectedAnswer is a ScriptError, which every caller handles (a skipped check, a 4xx); any
other exception (TypeError, KeyError, OverflowError) would reach the client as a 500.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screenshot_service.browser.driver_errors import ScriptError
from screenshot_service.capture import readback

# What Runtime.callFunctionOn can hand back by value (PageDriver maps NaN and ±Infinity to floats).
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
ANSWERS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                       | st.dictionaries(st.sampled_from(["title", "fonts", "broken", "x"]), inner, max_size=4),
                       max_leaves=12)
_QUICK = settings(derandomize=True, database=None, deadline=None, max_examples=50)


def test_an_unexpected_answer_is_a_script_error() -> None:
    assert issubclass(readback.UnexpectedAnswer, ScriptError)


@_QUICK
@given(ANSWERS)
def test_integers_are_four_whole_numbers_in_range_or_refused(answer: Any) -> None:
    try:
        box = readback.integers(answer, 4, low=-100, high=100)
    except readback.UnexpectedAnswer:
        return
    assert len(box) == 4 and all(type(v) is int and -100 <= v <= 100 for v in box)


@_QUICK
@given(ANSWERS)
def test_numbers_are_finite_and_in_range_or_refused(answer: Any) -> None:
    try:
        value = readback.number(answer, low=0, high=10)
    except readback.UnexpectedAnswer:
        return
    assert type(value) is float and math.isfinite(value) and 0 <= value <= 10


@_QUICK
@given(ANSWERS)
def test_texts_are_bounded_strings_or_refused(answer: Any) -> None:
    try:
        value = readback.text(answer, limit=8)
    except readback.UnexpectedAnswer:
        return
    assert isinstance(value, str) and len(value) <= 8


@_QUICK
@given(ANSWERS)
def test_records_have_their_keys_or_are_refused(answer: Any) -> None:
    try:
        value = readback.record(answer, ("title", "fonts"))
    except readback.UnexpectedAnswer:
        return
    assert isinstance(value, dict) and {"title", "fonts"} <= value.keys()


@pytest.mark.parametrize("answer", [True, 1.5, math.nan, -math.inf, 2**40, "3", None, [1, 2, 3]])
def test_what_is_not_a_whole_number_in_range_is_refused(answer: Any) -> None:
    with pytest.raises(readback.UnexpectedAnswer):
        readback.integer(answer, low=0, high=2**31)
