"""A capture made later (a job, a monitor run), retried while the browser is busy or crashed.

Sync requests go first: a background capture that meets a full pool waits and tries again, for
at most ``OVERLOADED_RETRIES`` tries and ``OVERLOADED_WINDOW`` seconds, then fails like a sync
request would.  A browser that crashed under it is retried ``BROWSER_RETRIES`` times.  Each try
has its own deadline, counted from its start: waiting is not the capture's time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..browser.errors import BrowserUnavailable, Overloaded
from ..capture.pipeline import CapturePipeline, Order
from ..capture.result import CaptureResult

BROWSER_RETRIES = 2  # a browser crash under a capture is retried this often before it fails
OVERLOADED_PAUSE = 0.25  # the pool's queue is full of sync requests: they go first, try again shortly
OVERLOADED_RETRIES = 240  # ... this many times
OVERLOADED_WINDOW = 60.0  # ... and for at most this long; then it fails like a sync request would


class Stopping(Exception):
    """The process is stopping: put the work back rather than fail it."""


def longest(deadline_seconds: float) -> float:
    """The longest ``capture_with_retries`` may take: what a credit reserved before it must outlast."""
    attempts = BROWSER_RETRIES + 1
    pauses = sum(range(1, attempts))
    # The last busy try may start just inside the window: one more pause and deadline beyond it.
    return OVERLOADED_WINDOW + OVERLOADED_PAUSE + attempts * deadline_seconds + pauses


async def capture_with_retries(pipeline: CapturePipeline, order: Callable[[], Order],
                               stopping: Callable[[], bool] = lambda: False) -> CaptureResult:  # fmt: skip
    """``order()`` builds each try's order (its deadline starts then); Stopping once ``stopping()``."""
    loop = asyncio.get_running_loop()
    first_busy: float | None = None
    failures = busy = 0
    while True:
        if stopping():
            raise Stopping
        try:
            return await pipeline.run(order())
        except Overloaded:
            busy += 1
            first_busy = loop.time() if first_busy is None else first_busy
            if busy > OVERLOADED_RETRIES or loop.time() - first_busy >= OVERLOADED_WINDOW:
                raise
            await asyncio.sleep(OVERLOADED_PAUSE)
        except BrowserUnavailable:
            if stopping():
                raise Stopping from None
            failures += 1
            if failures > BROWSER_RETRIES:
                raise
            await asyncio.sleep(failures)
