"""The ``actions`` option (SPEC §3.2): a JSON list of steps, each an object of one kind.

Parsed whole before any capture starts, so a malformed step is a 400 naming ``actions[i]``
(``BadFields``) and never a failure in the middle of a page.  capture/actions.py runs them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .keys import KEYS, key_of
from .parsers import json_value
from .scalar_parsers import Bad, BadFields, described, integer, selector, text

MAX_STEPS = 20
MAX_WAIT_MS = 10_000
MAX_TYPED = 10_000  # characters one `type` step sends, one key event each
MAX_SCRIPT = 100_000  # characters of a `wait_for_function` expression
MAX_SCROLL = 1_000_000  # CSS px

MAX_STEP_TIMEOUT_MS = 30_000
WAIT_KINDS = ("wait_for_selector", "wait_for_selector_hidden", "wait_for_function")  # may carry "timeout"
SELECTOR_KINDS = ("click", "hover", "wait_for_selector", "wait_for_selector_hidden")
KINDS = (*SELECTOR_KINDS, "type", "press", "scroll_to", "wait_for_function", "wait")


class Step(NamedTuple):
    kind: str
    selector: str | None = None  # click, hover, type, wait_for_selector(_hidden), scroll_to an element
    text: str | None = None  # type: the characters; press: the key; wait_for_function: the expression
    number: int | None = None  # scroll_to: y in CSS px; wait: milliseconds
    timeout: int | None = None  # a wait's own bound in ms (reason `timeout`); else the capture's deadline

# One example step of each kind, as the API Tester's "add step" buttons insert them.
STEP_TEMPLATES: dict[str, dict[str, Any]] = {
    "click": {"click": "#accept"},
    "hover": {"hover": "nav .menu"},
    "type": {"type": {"selector": "input[name=q]", "text": "hello"}},
    "press": {"press": "Enter"},
    "scroll_to": {"scroll_to": {"y": 600}},
    "wait_for_selector": {"wait_for_selector": "#content", "timeout": 5000},
    "wait_for_selector_hidden": {"wait_for_selector_hidden": ".spinner"},
    "wait_for_function": {"wait_for_function": "document.fonts.status === 'loaded'"},
    "wait": {"wait": 500},
}


def wait_for_function(value: Any) -> str:
    script = text(MAX_SCRIPT)(value)
    if not script.strip():
        raise Bad("must be a non-empty JavaScript expression")
    return script


def actions(value: Any) -> tuple[Step, ...]:
    steps = json_value(value, "a JSON list of action steps")
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        raise Bad(f"must be a list of at most {MAX_STEPS} steps, each an object such as {{\"click\": \"#button\"}}")
    problems: dict[str, str] = {}
    parsed: list[Step] = []
    for index, item in enumerate(steps):
        try:
            parsed.append(_step(item))
        except Bad as bad:
            problems[f"actions[{index}]"] = str(bad)
    if problems:
        raise BadFields(problems)
    return tuple(parsed)


def _step(item: Any) -> Step:
    if not isinstance(item, dict):
        raise Bad(f"must be an object with one key, the step's kind: {', '.join(KINDS)}")
    kinds = [key for key in item if key != "timeout"]
    if len(kinds) != 1:
        raise Bad(f"must be an object with one key, the step's kind: {', '.join(KINDS)}")
    kind = kinds[0]
    if kind not in KINDS:
        raise Bad(f"unknown step {str(kind)[:40]!r}; known: {', '.join(KINDS)}")
    try:
        step = _argument(kind, item[kind])
        if "timeout" not in item:
            return step
        if kind not in WAIT_KINDS:
            raise Bad(f"takes no timeout (only {', '.join(WAIT_KINDS)} do)")
        return step._replace(timeout=_whole(1, MAX_STEP_TIMEOUT_MS, item["timeout"], "timeout"))
    except Bad as bad:
        raise Bad(f"{kind} {bad}") from None


def _argument(kind: str, arg: Any) -> Step:
    if kind in SELECTOR_KINDS:
        return Step(kind, selector=_selector(arg))
    if kind == "type":
        if not isinstance(arg, dict) or set(arg) != {"selector", "text"}:
            raise Bad("must be an object {\"selector\": SEL, \"text\": T}")
        return Step(kind, selector=_selector(arg["selector"]), text=text(MAX_TYPED)(arg["text"]))
    if kind == "press":
        if not isinstance(arg, str) or key_of(arg) is None:
            raise Bad(f"must be a DOM key name ({', '.join(KEYS)}) or one printable ASCII character")
        return Step(kind, text=arg)
    if kind == "scroll_to":
        if isinstance(arg, dict):
            if set(arg) != {"y"}:
                raise Bad("must be a selector or an object {\"y\": PX}")
            return Step(kind, number=_whole(0, MAX_SCROLL, arg["y"], "y"))
        return Step(kind, selector=_selector(arg))
    if kind == "wait_for_function":
        return Step(kind, text=wait_for_function(arg))
    return Step(kind, number=_whole(0, MAX_WAIT_MS, arg, "milliseconds"))


def _selector(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad("must be a CSS selector (a string)")
    return selector(value)


def _whole(low: int, high: int, value: Any, what: str) -> int:
    if isinstance(value, str):
        raise Bad(f"{what} must be a number from {low} to {high}")
    try:
        return integer(low, high)(value)
    except Bad as bad:
        raise Bad(f"{what} {bad}") from None


_SELECTOR = {"type": "string", "maxLength": 1024}
_WAIT_TIMEOUT = {"type": "integer", "minimum": 1, "maximum": MAX_STEP_TIMEOUT_MS}
_ARGUMENTS: dict[str, dict[str, Any]] = {
    **{kind: _SELECTOR for kind in SELECTOR_KINDS},
    "type": {"type": "object", "required": ["selector", "text"], "additionalProperties": False,
             "properties": {"selector": _SELECTOR, "text": {"type": "string", "maxLength": MAX_TYPED}}},
    "press": {"type": "string", "description": "a DOM key name or one printable ASCII character",
              "examples": list(KEYS)},
    "scroll_to": {"oneOf": [_SELECTOR, {"type": "object", "required": ["y"], "additionalProperties": False,
                                        "properties": {"y": {"type": "integer", "minimum": 0,
                                                             "maximum": MAX_SCROLL}}}]},
    "wait_for_function": {"type": "string", "maxLength": MAX_SCRIPT},
    "wait": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS},
}
_STEP_SCHEMA = {"oneOf": [
    {"type": "object", "required": [kind], "additionalProperties": False,
     "properties": {kind: argument, **({"timeout": _WAIT_TIMEOUT} if kind in WAIT_KINDS else {})}}
    for kind, argument in _ARGUMENTS.items()]}
described(actions, {"type": "array", "maxItems": MAX_STEPS, "items": _STEP_SCHEMA})
described(wait_for_function, {"type": "string", "maxLength": MAX_SCRIPT})
