"""One capture end to end: egress check → pool slot → render → store.

Used by the sync endpoint, the job workers and the one-shot CLI alike.  The
deadline covers everything from the request's arrival; storing the result is
shielded from the caller going away, so a finished capture is never lost
half-way through being saved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from ..browser.pool import BrowserPool, Lease
from ..egress.policy import EgressPolicy
from ..egress.proxy import ProxyChannel
from ..egress.resolver import Resolver, check_target
from ..errors import CaptureTimeout
from ..storage.base import Storage, StoredObject, new_object_name
from . import render
from .navigation_watch import MainFrameWatch
from .options import CaptureOptions


@dataclass(frozen=True)
class CaptureResult:
    stored: StoredObject
    data: bytes
    format: str
    width: int
    height: int
    took_ms: int
    cached: bool = False
    blocked_requests: int = 0
    clamped: bool = False

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "url": self.stored.url,
            "expires_at": _iso(self.stored.expires_at),
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": len(self.data),
            "took_ms": self.took_ms,
            "cached": self.cached,
            "blocked_requests": self.blocked_requests,
        }
        if self.clamped:
            body["clamped"] = True
        return body


@dataclass(frozen=True)
class Phases:
    """Seconds spent per phase, for the capture-duration histogram."""

    queue: float = 0.0
    navigation: float = 0.0
    capture: float = 0.0
    storage: float = 0.0


class CaptureService:
    def __init__(
        self,
        pool: BrowserPool,
        storage: Storage,
        policy: EgressPolicy,
        resolver: Resolver,
        *,
        deadline_seconds: float,
    ) -> None:
        self.pool = pool
        self.storage = storage
        self.policy = policy
        self.resolver = resolver
        self.deadline_seconds = deadline_seconds

    def deadline_for(self, opts: CaptureOptions, started: float) -> float:
        """Loop time by which this capture must be over: min(timeout, server deadline)."""
        return started + min(float(opts.timeout), self.deadline_seconds)

    async def capture(self, opts: CaptureOptions, *, started: float, base_url: str = "") -> CaptureResult:
        """``started`` is the loop time the request arrived; the deadline counts from it."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline_for(opts, started)
        budget = deadline - started
        try:
            async with asyncio.timeout_at(deadline):
                assert opts.url is not None
                target = await check_target(opts.url, self.policy, self.resolver)
                opts = opts.with_changes(url=target.url)
                async with self.pool.lease() as lease:
                    rendered, blocked = await lease.guard(self._render(lease, opts))
                stored = await asyncio.shield(self._store(opts, rendered.data, base_url))
        except TimeoutError:
            raise CaptureTimeout(
                f"the capture did not finish within {budget:g} s",
                details={"deadline_seconds": budget},
            ) from None
        return CaptureResult(
            stored=stored,
            data=rendered.data,
            format=opts.format,
            width=rendered.width,
            height=rendered.height,
            took_ms=round((loop.time() - started) * 1000),
            clamped=rendered.clamped,
            blocked_requests=blocked,
        )

    async def _render(self, lease: Lease, opts: CaptureOptions) -> tuple[render.Rendered, int]:
        """Render on a leased page; returns the image and how many requests egress refused."""
        channel: ProxyChannel | None = lease.handle
        watch = MainFrameWatch(lease.page)
        await render.navigate(lease.page, opts)
        watch.raise_if_blocked()  # a redirect or script navigation to a forbidden host
        rendered = await render.capture(lease.page, opts)
        watch.raise_if_blocked()
        return rendered, len(channel.blocked) if channel is not None else 0

    async def _store(self, opts: CaptureOptions, data: bytes, base_url: str) -> StoredObject:
        return await self.storage.put(new_object_name(opts.format), data, opts.content_type, base_url=base_url)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
