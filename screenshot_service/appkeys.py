"""Every typed key of the aiohttp application state, in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .browser.pool import BrowserPool
from .capture.cache import CaptureCache
from .capture.capture_records import CaptureRecords
from .capture.pipeline import CapturePipeline
from .capture.service import CaptureService
from .capture.timing import StageTimings
from .config import Settings
from .egress.policy import EgressPolicy
from .egress.proxy import EgressProxy
from .egress.resolver import Resolver
from .limits.admission import Admission, LimitState
from .limits.ledger import Ledger
from .metrics import Metrics
from .state.base import StateStore
from .storage.base import Storage


@dataclass
class Lifecycle:
    """Process-wide switches that handlers read, and the requests in flight that shutdown waits for."""

    draining: bool = False
    in_flight: int = 0  # requests being handled, the always-open probes apart
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every request in flight to end. True if all did."""
        try:
            await asyncio.wait_for(self._idle.wait(), max(0.0, timeout))
        except TimeoutError:
            return False
        return True


SETTINGS = web.AppKey("settings", Settings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
POOL = web.AppKey("pool", BrowserPool)
STORAGE = web.AppKey("storage", Storage)
STATE = web.AppKey("state", StateStore)
POLICY = web.AppKey("policy", EgressPolicy)
RESOLVER = web.AppKey("resolver", Resolver)
CAPTURE = web.AppKey("capture", CaptureService)
PIPELINE = web.AppKey("pipeline", CapturePipeline)  # every capture runs through it
PROXY = web.AppKey("proxy", EgressProxy)  # the egress filter for the browser, webhooks and customer S3
ADMISSION = web.AppKey("admission", Admission)
LEDGER = web.AppKey("ledger", Ledger)
CACHE = web.AppKey("cache", CaptureCache)
RECORDS = web.AppKey("records", CaptureRecords)
METRICS = web.AppKey("metrics", Metrics)

# Per-request values (web.RequestKey): set by middlewares and handlers, read by the access log.
STARTED = web.RequestKey("started", float)  # loop time of arrival; capture deadlines count from it
REQUEST_ID = web.RequestKey("request_id", str)
KEY_ID = web.RequestKey("key_id", str)  # the caller's public key id, never the key
TARGET_HOST = web.RequestKey("target_host", str)  # host only, never the full URL
# What the rate and quota limits decided while handling; in the headers of whatever response goes out.
LIMITS = web.RequestKey("limits", LimitState)
# A capture's stages (capture/timing.py), once its caller is authenticated: sent as Server-Timing.
TIMINGS = web.RequestKey("timings", StageTimings)
