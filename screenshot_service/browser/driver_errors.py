"""What a browser call raises, and ``bounded``, which every call goes through.

``bounded`` turns pyppeteer's errors into the ones below and gives every call a
bound (``CALL_BOUND``; browser-level calls take their own, shorter one), so nothing
can wait for ever on a hung browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from pyppeteer.errors import BrowserError, ElementHandleError, NetworkError, PageError

from .devtools import is_connection_lost

T = TypeVar("T")

# Beyond any capture deadline (<= 30 s): the caller's deadline ends a page call first, this
# bound only guarantees that no call outlives a deadline somebody forgot.
CALL_BOUND = 45.0


class DriverError(Exception):
    """A browser call failed."""


class ConnectionLost(DriverError):
    """The browser, its DevTools socket or the page's renderer went away."""


class ProtocolError(DriverError):
    """The browser refused a command (bad parameters, a state it cannot be in)."""


class ScriptError(DriverError):
    """Script evaluated in the page threw."""


class NavigationFailed(DriverError):
    """The main document did not load; the message carries Chromium's net error (``net::ERR_…``)."""


class CallTimeout(DriverError):
    """A browser call outlived its bound: the browser is hung."""


def _translate(exc: BaseException) -> BaseException:
    if is_connection_lost(exc) or isinstance(exc, (ConnectionError, BrowserError)):
        return ConnectionLost(str(exc))
    if isinstance(exc, PageError):
        return NavigationFailed(str(exc))
    if isinstance(exc, ElementHandleError):
        return ScriptError(str(exc))
    if isinstance(exc, NetworkError):
        text = str(exc)
        # A renderer that crashed under a call reports "Target crashed" / "context destroyed".
        if "Target crashed" in text or "Inspected target navigated or closed" in text:
            return ConnectionLost(text)
        return ProtocolError(text)
    return exc


async def bounded(call: Awaitable[T], bound: float) -> T:
    """``call`` with pyppeteer's errors turned into ours, and at most ``bound`` seconds."""
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs a coroutine as a task of
        # its own, and every DevTools call of a capture comes through here.
        async with asyncio.timeout(bound):
            return await call
    except TimeoutError:
        # An outer deadline (asyncio.timeout) cancels us with the same error type: only ours is a hang.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise CallTimeout(f"no answer from the browser within {bound:g} s") from None
    except DriverError:
        raise
    except Exception as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc
