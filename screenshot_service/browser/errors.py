"""The browser pool's exceptions: no browser to capture with, no room, a page too big.

What a single page call raises (connection lost, script error, timeout) is
``driver_errors.DriverError``; these are what the pool tells its callers.
"""

from __future__ import annotations

from ..faults import LayerError


class PoolError(LayerError):
    """The pool could not give or keep a browser context for a capture."""


class BrowserUnavailable(PoolError):
    """No browser is up (restarting, crashed during the capture, shutting down)."""


class Overloaded(PoolError):
    """Every slot is taken and the queue is full: refused at once, never queued into a timeout."""


class PageMemoryExceeded(PoolError):
    """The page outgrew ``browser.max_page_memory_mb`` (its renderer was stopped), or the browser's
    shared processes ``browser.max_browser_memory_mb`` (it was killed and relaunched)."""
