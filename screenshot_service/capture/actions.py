"""Run ``actions`` (SPEC §3.2) and the top-level ``wait_for_function`` on a loaded page.

Clicks, hovers and key presses are real input (``Input.dispatch*``): the page sees trusted
events, its ``:hover``, focus and default actions, as from a user.  Where an element is comes
from a script in the service's isolated world, type-checked (readback.py).  The caller's
``wait_for_function`` is the caller's code, like ``js``: it runs in the page's own world,
polled from Python, so a page that stops its timers cannot stall it past the deadline.
Every wait ends at the capture's deadline (the usual 504) unless a step fails first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ..browser.driver_errors import DriverError, ScriptError
from ..browser.page_driver import PageDriver
from ..errors import ActionFailed, InvalidParameter
from . import loading, readback
from .action_parsers import Step
from .keys import Key, key_of
from .options import CaptureOptions
from .session import CaptureSession

POLL = 0.05  # seconds between polls of a condition the page cannot signal to us

# The element's centre in viewport coordinates, after scrolling it into view: 'invalid' (not a
# selector), 'missing' or 'hidden' (nothing to point at) instead.
_POINT_JS = """(selector) => {
  let el;
  try { el = document.querySelector(selector); } catch (e) { return 'invalid'; }
  if (!el) return 'missing';
  el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
  const r = el.getBoundingClientRect(), style = getComputedStyle(el);
  const left = Math.max(r.left, 0), right = Math.min(r.right, innerWidth);
  const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, innerHeight);
  if (style.visibility === 'hidden' || right <= left || bottom <= top) return 'hidden';
  return [(left + right) / 2, (top + bottom) / 2];
}"""

_SCROLL_JS = """(selector, y) => {
  if (selector === null) { window.scrollTo({left: window.scrollX, top: y, behavior: 'instant'}); return 'done'; }
  let el;
  try { el = document.querySelector(selector); } catch (e) { return 'invalid'; }
  if (!el) return 'missing';
  el.scrollIntoView({block: 'start', inline: 'nearest', behavior: 'instant'});
  return 'done';
}"""

_HIDDEN_JS = """(selector) => {
  let el;
  try { el = document.querySelector(selector); } catch (e) { return 'invalid'; }
  if (!el) return true;
  const box = el.getBoundingClientRect();
  return getComputedStyle(el).visibility === 'hidden' || !(box.top || box.bottom || box.width || box.height);
}"""

_VALID_JS = """(selector) => { try { document.createDocumentFragment().querySelector(selector); return true; }
  catch (e) { return false; } }"""


class _Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


async def perform(session: CaptureSession, opts: CaptureOptions) -> bool:
    """The top-level ``wait_for_function``, then each step in order.  True when the page
    is now on another document than the one it was settled on (a click followed a link)."""
    moved = False
    if opts.wait_for_function:
        await _run(None, "wait_for_function", _wait_for_function(session.page, opts.wait_for_function))
        await _caught_up(session.page)
    for index, step in enumerate(opts.actions):
        await _run(index, step.kind, _bounded(_step(session.page, index, step), step.timeout))
        await _caught_up(session.page)
        if session.documents.moved():  # the next step acts on the document this one led to, once it loaded
            moved = True
            await loading.follow(session, opts)
    return moved or (bool(opts.wait_for_function or opts.actions) and session.documents.moved())


async def _run(index: int | None, kind: str, act: Awaitable[None]) -> None:
    where = "wait_for_function" if index is None else f"actions[{index}] ({kind})"
    try:
        await act
    except _Failed as failed:
        raise ActionFailed(f"{where} failed: {failed}",
                           details={"index": index, "action": kind, "reason": failed.reason}) from None
    except ScriptError as exc:  # our own script's answer was not what it should be
        raise ActionFailed(f"{where} failed: {readback.first_line(exc)}",
                           details={"index": index, "action": kind, "reason": "js_error"}) from None


async def _caught_up(page: PageDriver) -> None:
    """Until the events the renderer sent while it ran the last step are in: the browser answers
    ``Input.dispatch*`` once the renderer acknowledged the input, which can come before the
    renderer's ``Page.frameRequestedNavigation`` for the link it followed (the documents tracker
    would not know yet that the page is leaving).  The renderer answers a command of its own only
    after the events it sent before, so one round trip to it orders them."""
    try:
        await page.send("Runtime.evaluate", {"expression": "0", "returnByValue": True})
    except DriverError:
        if page.crashed.done():
            raise  # else the document went meanwhile: the tracker has seen that too


async def _bounded(act: Awaitable[None], timeout_ms: int | None) -> None:
    """``act`` within the step's own ``timeout``; without one, the capture's deadline ends it (504)."""
    if timeout_ms is None:
        return await act
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            await act
    except TimeoutError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # the capture's deadline, not the step's
            raise
        raise _Failed("timeout", f"not done within its timeout of {timeout_ms} ms") from None


async def _step(page: PageDriver, index: int, step: Step) -> None:
    field = f"actions[{index}]"
    if step.kind in ("click", "hover", "type"):
        x, y = await _point(page, field, _selector(step))
        await _mouse(page, "mouseMoved", x, y)
        if step.kind != "hover":
            await _mouse(page, "mousePressed", x, y)
            await _mouse(page, "mouseReleased", x, y)
        if step.kind == "type":
            await _type(page, step.text or "")
    elif step.kind == "press":
        key = key_of(step.text or "")
        assert key is not None  # the parser took only known keys
        await _press(page, key)
    elif step.kind == "scroll_to":
        answer = await page.evaluate(_SCROLL_JS, step.selector, step.number or 0)
        _judge(readback.text(answer, limit=20, what="scroll"), field, step.selector)
    elif step.kind == "wait_for_selector":
        await check_selector(page, field, _selector(step))
        await page.wait_for_selector(_selector(step))
    elif step.kind == "wait_for_selector_hidden":
        while True:
            answer = await page.evaluate(_HIDDEN_JS, _selector(step))
            if answer is True:
                return
            if answer == "invalid":
                _judge("invalid", field, step.selector)
            await asyncio.sleep(POLL)
    elif step.kind == "wait_for_function":
        await _wait_for_function(page, step.text or "")
    else:  # wait
        await asyncio.sleep((step.number or 0) / 1000)


def _selector(step: Step) -> str:
    assert step.selector is not None  # the parser gave every selector step one
    return step.selector


async def _point(page: PageDriver, field: str, selector: str) -> tuple[float, float]:
    answer = await page.evaluate(_POINT_JS, selector)
    if isinstance(answer, str):
        _judge(answer, field, selector)
    if not isinstance(answer, list) or len(answer) != 2:
        raise readback.UnexpectedAnswer(f"element position: expected two numbers, got {type(answer).__name__}")
    return (readback.number(answer[0], low=0, high=readback.COORDINATE, what="x"),
            readback.number(answer[1], low=0, high=readback.COORDINATE, what="y"))


def _judge(answer: str, field: str, selector: str | None) -> None:
    """Raise for a script's verdict on ``selector``; 'done' is no failure."""
    if answer == "invalid":
        raise InvalidParameter.fields({field: f"{selector!r} is not a valid CSS selector"})
    if answer == "missing":
        raise _Failed("selector_not_found", f"no element matches {selector!r}")
    if answer == "hidden":
        raise _Failed("not_visible", f"the element matching {selector!r} has no visible box to point at")
    if answer != "done":
        raise readback.UnexpectedAnswer(f"unexpected answer {answer[:40]!r}")


async def check_selector(page: PageDriver, field: str, selector: str) -> None:
    """A 400 naming ``field`` for a selector the browser cannot parse (instead of a silent no-op)."""
    if await page.evaluate(_VALID_JS, selector) is not True:
        _judge("invalid", field, selector)


async def _mouse(page: PageDriver, kind: str, x: float, y: float) -> None:
    params: dict[str, Any] = {"type": kind, "x": x, "y": y, "button": "none" if kind == "mouseMoved" else "left"}
    if kind != "mouseMoved":
        params.update(clickCount=1, buttons=1 if kind == "mousePressed" else 0)
    await page.send("Input.dispatchMouseEvent", params)


async def _type(page: PageDriver, text: str) -> None:
    for char in text:
        key = key_of("Enter" if char == "\n" else char)
        if key is None:  # no key types it on a US keyboard: inserted, as an input method would
            await page.send("Input.insertText", {"text": char})
        else:
            await _press(page, key)


async def _press(page: PageDriver, key: Key) -> None:
    down: dict[str, Any] = {"type": "keyDown" if key.text else "rawKeyDown", "key": key.key, "code": key.code,
                            "windowsVirtualKeyCode": key.key_code, "nativeVirtualKeyCode": key.key_code}
    if key.text:
        down.update(text=key.text, unmodifiedText=key.text)
    await page.send("Input.dispatchKeyEvent", down)
    await page.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key.key, "code": key.code,
                                               "windowsVirtualKeyCode": key.key_code,
                                               "nativeVirtualKeyCode": key.key_code})


async def _wait_for_function(page: PageDriver, expression: str) -> None:
    """Until the caller's expression (or the function it names, called) is truthy; a promise is awaited."""
    source = ("(async () => { const value = (\n" + expression.strip().rstrip(";") +
              "\n); return !!(typeof value === 'function' ? await value() : await value); })()")
    while True:
        try:
            result = await page.send("Runtime.evaluate", {"expression": source, "returnByValue": True,
                                                          "awaitPromise": True, "userGesture": True})
        except DriverError:
            if page.crashed.done():
                raise
            await asyncio.sleep(POLL)  # the document went while it ran: asked again of the next one
            continue
        details = result.get("exceptionDetails")
        if details:
            raise _Failed("js_error", f"threw {readback.thrown(details)}")
        if (result.get("result") or {}).get("value") is True:
            return
        await asyncio.sleep(POLL)
