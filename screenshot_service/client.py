"""The Python client, re-exported: it is its own distribution, ``screenshot-service-client``
(``clients/python``, import ``screenshot_client``), depending on aiohttp alone.  Import it as
``screenshot_client`` in new code; this name keeps existing imports working."""

from __future__ import annotations

from screenshot_client import (
    BlockingScreenshotClient,
    ScreenshotClient,
    ScreenshotError,
    __version__,
    canonical_query,
    sign,
    signed_url,
)

__all__ = [
    "BlockingScreenshotClient",
    "ScreenshotClient",
    "ScreenshotError",
    "__version__",
    "canonical_query",
    "sign",
    "signed_url",
]
