"""The batch phase (README, Batches): 50 captures as one batch against the same 50 sent as sync
requests at the pool's concurrency, on a service of its own.

That service runs as many job workers as the pool has sync slots, so both sides have the same
number of browser contexts: what is measured is what a batch adds (validation, the one
reservation, the queue and its claims, settling each item), not a configured difference in
capacity.  Recorded: each side's wall time and throughput, and batch/sync throughput (the
target: at least 0.9).  The batch's time runs from its POST to the poll that sees it done.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from .service import ServiceHandle, ServiceOptions, spawn_service
from .spec import PAGES

ITEMS = 50
WARMUP = 4  # captures on each side first, so neither pays for starting its Chromium
POLL_S = 0.05
BATCH_TIMEOUT_S = 300.0


async def measure(site_port: int, root: Path, opts: ServiceOptions, session: aiohttp.ClientSession) -> dict[str, Any]:
    spec = PAGES["small"]
    site = f"http://127.0.0.1:{site_port}"
    service_opts = ServiceOptions(pool_size=opts.pool_size, max_queue=opts.max_queue,
                                  executable=opts.executable, deadline_seconds=opts.deadline_seconds,
                                  log_level=opts.log_level, jobs_workers=opts.pool_size)
    item = {"url": site + spec.path, **{k: _value(v) for k, v in spec.query().items()}}
    async with spawn_service(root, site_port, service_opts) as service:
        await _sync(service, session, site, WARMUP, opts.pool_size)
        await _batch(service, session, [item] * WARMUP)
        sync_s, sync_errors = await _sync(service, session, site, ITEMS, opts.pool_size)
        batch_s, batch = await _batch(service, session, [item] * ITEMS)
    sync_rate, batch_rate = ITEMS / sync_s, ITEMS / batch_s
    return {
        "items": ITEMS, "concurrency": opts.pool_size, "jobs_workers": opts.pool_size, "page": spec.page,
        "sync_seconds": round(sync_s, 2), "sync_per_s": round(sync_rate, 2), "sync_errors": sync_errors,
        "batch_seconds": round(batch_s, 2), "batch_per_s": round(batch_rate, 2),
        "batch_succeeded": batch.get("succeeded"), "batch_failed": batch.get("failed"),
        "throughput_ratio": round(batch_rate / sync_rate, 3),
    }


def _value(text: str) -> Any:
    return int(text) if text.isdigit() else (text == "true" if text in ("true", "false") else text)


async def _sync(service: ServiceHandle, session: aiohttp.ClientSession, site: str, count: int,
                concurrency: int) -> tuple[float, int]:
    """``count`` captures, ``concurrency`` at a time (a closed loop); (seconds, errors)."""
    spec = PAGES["small"]
    left, errors = count, 0

    async def worker() -> None:
        nonlocal left, errors
        while left > 0:
            left -= 1
            answer = await service.request(session, site, spec, "json")
            errors += answer.status != "200"

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, errors


async def _batch(service: ServiceHandle, session: aiohttp.ClientSession,
                 requests: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    headers = {"X-API-Key": service.api_key}
    began = time.perf_counter()
    async with session.post(service.base_url + "/v1/batches", json={"requests": requests}, headers=headers) as answer:
        batch = await answer.json()
        if answer.status != 202:
            raise RuntimeError(f"bench: POST /v1/batches answered {answer.status}: {batch}")
    while batch["status"] not in ("done", "canceled"):
        if time.perf_counter() - began > BATCH_TIMEOUT_S:
            raise RuntimeError(f"bench: batch still {batch['status']} after {BATCH_TIMEOUT_S:g} s")
        await asyncio.sleep(POLL_S)
        async with session.get(batch["status_url"], headers=headers) as answer:
            batch = await answer.json()
    return time.perf_counter() - began, batch
