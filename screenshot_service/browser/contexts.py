"""Warm context factory: make a fresh incognito context with a blank page, and dispose of it.

Each context may hold something outside the browser (the egress proxy channel
its traffic arrives on, attached by a ``ContextHook``).  Whatever way a context
ends (used, recycled, crashed with its browser, shut down, or failed half-way
through warming), ``dispose`` or ``release`` gives that back: the browser side
dies with the browser, the hook's side would not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from .driver import BrowserDriver
from .driver_errors import CallTimeout, DriverError
from .page_driver import PageDriver, Prime
from .storage_quota import cap_storage

log = logging.getLogger("screenshot_service.pool")

CONTEXT_BOUND = 10.0  # making or disposing a context takes ms; this long means a wedged browser


class ContextHook(Protocol):
    """Lets another component (the egress proxy) shape each new context."""

    async def open(self) -> tuple[dict[str, Any], Any]:
        """Extra Target.createBrowserContext params, and a handle given to the lease."""
        ...

    async def close(self, handle: Any) -> None: ...


@dataclass(eq=False)
class WarmContext:
    context_id: str
    page: PageDriver
    handle: Any = None  # what the ContextHook attached (e.g. its proxy channel)


class ContextFactory:
    """``prime`` runs on every new page before it is handed out (the capture layer's default
    emulation), so a capture with the default options sends none of it on its own clock."""

    def __init__(self, hook: ContextHook | None = None, *, bound: float = CONTEXT_BOUND,
                 prime: Prime | None = None, storage_quota_mb: int = 0) -> None:
        self.hook = hook
        self.prime = prime
        self.storage_quota_mb = storage_quota_mb  # per origin of a page (storage_quota.py); 0 = Chromium's
        self.bound = bound
        self.open_handles = 0  # hook handles given out and not yet released: 0 when nothing leaks

    async def create(self, browser: BrowserDriver) -> WarmContext:
        params: dict[str, Any] = {}
        handle = None
        if self.hook is not None:
            params, handle = await self.hook.open()
            self.open_handles += 1
        try:
            context_id, page = await browser.new_context(params, self.bound, self.prime)
        except BaseException:
            await self._close_handle(handle)
            raise
        if self.storage_quota_mb:
            cap_storage(page, self.storage_quota_mb)
        return WarmContext(context_id=context_id, page=page, handle=handle)

    async def dispose(self, browser: BrowserDriver, warm: WarmContext) -> bool:
        """Close the context (killing its renderer) and release its handle.

        False when the browser did not answer in time: it is wedged, and the caller should treat
        it as dead.  A browser already gone is not an error: its contexts went with it.
        """
        try:
            if browser.connected:
                await browser.dispose_context(warm.context_id, self.bound)
            return True
        except CallTimeout:
            return False
        except DriverError:
            return True
        finally:
            await self.release(warm)

    async def release(self, warm: WarmContext) -> None:
        """Give back what the hook attached, without touching the browser (it is gone or going)."""
        handle, warm.handle = warm.handle, None
        await self._close_handle(handle)

    async def _close_handle(self, handle: Any) -> None:
        if handle is None or self.hook is None:
            return
        self.open_handles -= 1
        try:
            await self.hook.close(handle)
        except Exception as exc:
            log.warning("releasing a context's %s failed: %r", type(handle).__name__, exc)
