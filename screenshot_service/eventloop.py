"""The event loop the service runs on: uvloop's (libuv) where it is installed, else asyncio's.

At saturation the service's Python shares two cores with Chromium, so the loop's own
cost per callback is throughput: on uvloop the process spends about 15 % less CPU per
capture (docs/browser.md, "DevTools over a pipe").  Behaviour is the same on
both; the test suite runs on the one the service runs on (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory:
    try:
        import uvloop
    except ImportError:  # not installable everywhere (Windows): asyncio's own loop
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    return loop_factory()()

