"""The fair-share phase (README, Fair share of the pool): Step 15's starvation attack, measured.

A service of its own (2 slots, 8 queue places, three keys): two attacker keys each keep 7
captures of a slow page going (a closed loop; a refused request retries after a short pause),
and once the queue is full a third key sends small captures one after another.  Recorded: how
many of the third key's requests were refused (the target: none), and its longest wait for a
slot (the ``admission`` stage of its Server-Timing: the slot, then a warm page) as a ratio to
an attacker capture (its answer's time less its own wait for a slot), p95 as captures vary:
the target is at most one — it waits for one attacker capture to end, never for the queue.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from . import report
from .load import Answer
from .service import ServiceHandle, ServiceOptions, spawn_service
from .spec import PAGES, CaptureSpec

POOL_SIZE, MAX_QUEUE = 2, 8
ATTACKERS, PER_ATTACKER = 2, 7
ATTACK_MS = 2000  # the attackers' page: its one image takes this long
PROBES = 5  # the third key's captures
RETRY_PAUSE_S = 0.2  # an attacker's pause after a refusal (a busy loop would measure the client)
QUEUE_FULL_TIMEOUT_S = 20.0


async def measure(site_port: int, root: Path, opts: ServiceOptions, session: aiohttp.ClientSession) -> dict[str, Any]:
    attack = CaptureSpec("attack", f"/slow?ms={ATTACK_MS}")
    small = PAGES["small"]
    service_opts = ServiceOptions(pool_size=POOL_SIZE, max_queue=MAX_QUEUE, executable=opts.executable,
                                  deadline_seconds=opts.deadline_seconds, log_level=opts.log_level)
    site = f"http://127.0.0.1:{site_port}"
    async with spawn_service(root, site_port, service_opts, extra_keys=ATTACKERS) as service:
        stop = asyncio.Event()
        attacker_ms: list[float] = []
        attacker_refused = 0

        async def attacker(key: str) -> None:
            nonlocal attacker_refused
            while not stop.is_set():
                began = time.perf_counter()
                answer = await service.request(session, site, attack, "json", api_key=key)
                if answer.status == "200":  # the capture itself: its answer's time less its wait for a slot
                    attacker_ms.append((time.perf_counter() - began) * 1000 - answer.stages.get("admission", 0.0))
                else:
                    attacker_refused += 1
                    await asyncio.sleep(RETRY_PAUSE_S)

        crowd = [asyncio.ensure_future(attacker(key)) for key in service.other_keys for _ in range(PER_ATTACKER)]
        try:
            full = await _queue_full(service, session)
            probes = [await _probe(service, session, site, small) for _ in range(PROBES)]
        finally:
            stop.set()
            await asyncio.gather(*crowd, return_exceptions=True)
    refused = sum(1 for answer in probes if answer.status != "200")
    waits = [answer.stages.get("admission", 0.0) for answer in probes]
    attacker_p50, attacker_p95 = (round(report.percentile(attacker_ms, q), 1) if attacker_ms else None
                                  for q in (50, 95))
    longest = round(max(waits), 1) if waits else None
    return {
        "pool_size": POOL_SIZE, "max_queue": MAX_QUEUE, "attackers": ATTACKERS, "per_attacker": PER_ATTACKER,
        "queue_was_full": full, "attacker_captures": len(attacker_ms), "attacker_refused": attacker_refused,
        "attacker_capture_p50_ms": attacker_p50, "attacker_capture_p95_ms": attacker_p95,
        "third_key_requests": len(probes), "third_key_refused": refused,
        "third_key_longest_wait_ms": longest, "third_key_wait_ratio": report.ratio(longest, attacker_p95),
    }


async def _queue_full(service: ServiceHandle, session: aiohttp.ClientSession) -> bool:
    deadline = time.perf_counter() + QUEUE_FULL_TIMEOUT_S
    while time.perf_counter() < deadline:
        stats = await service.pool_stats(session)
        if stats.get("in_use") == POOL_SIZE and stats.get("waiting", 0) >= MAX_QUEUE:
            return True
        await asyncio.sleep(0.05)
    return False


async def _probe(service: ServiceHandle, session: aiohttp.ClientSession, site: str, spec: CaptureSpec) -> Answer:
    return await service.request(session, site, spec, "json")
