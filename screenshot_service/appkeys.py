"""Every typed key of the aiohttp application state, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .browser.pool import BrowserPool
from .capture.cache import CaptureCache
from .capture.pipeline import CapturePipeline
from .capture.service import CaptureService
from .config import Settings
from .egress.policy import EgressPolicy
from .egress.proxy import EgressProxy
from .egress.resolver import Resolver
from .limits.admission import Admission
from .limits.ledger import Ledger
from .metrics import METRICS as METRICS  # defined beside Metrics (no import cycle); listed here with the rest
from .state.base import StateStore
from .storage.base import Storage


@dataclass
class Lifecycle:
    """Process-wide switches that handlers read."""

    draining: bool = False


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

# Per-request values (web.RequestKey): set by middlewares and handlers, read by the access log.
STARTED = web.RequestKey("started", float)  # loop time of arrival; capture deadlines count from it
REQUEST_ID = web.RequestKey("request_id", str)
KEY_ID = web.RequestKey("key_id", str)  # the caller's public key id, never the key
TARGET_HOST = web.RequestKey("target_host", str)  # host only, never the full URL
# Rate-limit and quota headers gathered while handling; added to whatever response goes out.
LIMIT_HEADERS = web.RequestKey("limit_headers", dict)
