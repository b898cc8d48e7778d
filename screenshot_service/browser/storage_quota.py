"""What a capture's page may store: each origin it loads a document from gets a quota.

An incognito context keeps CacheStorage, IndexedDB and the like in the browser
process, shared by every capture, and Chromium gives each origin of such a
context a share of 15-20 % of the machine's memory (about 1.3 GB on 24 GB).
``Storage.overrideQuotaForOrigin`` lowers that to ``browser.max_page_storage_mb``
for each origin the page requests a document from (the target, its redirects,
same-process frames), as the request leaves, so before the document can write.
A write beyond the quota fails in the page with ``QuotaExceededError`` and the
capture goes on.  Storage Chromium keys otherwise (a cross-origin frame's
partitioned storage) keeps Chromium's quota: the memory guard over the browser
process bounds that, and Blobs, which have no quota (memory.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..egress.urls import origin_of
from .driver_errors import DriverError
from .page_driver import PageDriver


def cap_storage(page: PageDriver, quota_mb: int) -> None:
    """From now on, give every origin ``page`` requests a document from ``quota_mb`` of storage."""
    capped: set[str] = set()
    sending: set[asyncio.Task[Any]] = set()  # held until answered: a task nobody references may vanish

    async def cap(origin: str) -> None:
        with contextlib.suppress(DriverError):  # the page is gone: so is its storage
            await page.send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": quota_mb << 20})

    def on_request(params: dict[str, Any]) -> None:
        if params.get("type") != "Document":
            return
        origin = origin_of(str(params.get("request", {}).get("url", "")))
        if origin is None or origin in capped:
            return
        capped.add(origin)
        task = asyncio.ensure_future(cap(origin))
        sending.add(task)
        task.add_done_callback(sending.discard)

    page.on("Network.requestWillBeSent", on_request)
