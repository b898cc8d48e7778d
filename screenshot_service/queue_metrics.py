"""Queue depth and queue wait by lane: what an autoscaler and the queue alerts read.

* ``sync``: requests waiting for a browser slot of the pool (browser/admission.py's queue;
  jobs too, on a pool built without a jobs lane of its own).  Depth is
  read from the admission at scrape time; every wait is observed when it ends, whether a
  slot was granted or not (a deadline, an eviction), so a saturated pool's waits all show.
* ``jobs``: accepted jobs waiting in the job store for a worker to claim them.  The store
  is shared by every instance on Redis, so each instance reports the same depth (aggregate
  with ``max``, not ``sum``); it is read from the store (one indexed count on SQLite, one
  ``LLEN`` on Redis) right before each scrape is answered.  A job's wait, from its
  submission to its first claim, is observed by the instance that claims it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram

from .browser.admission import JOBS, SYNC
from .faults import LayerError

log = logging.getLogger("screenshot_service.metrics")

NAMESPACE = "screenshot"
LANES = (SYNC, JOBS)
# Sync waits end by the 30 s capture deadline; a job backlog can wait minutes to an hour.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
PROBE_TIMEOUT = 1.0  # a store slower than this keeps its last depth: the scrape is answered anyway

DepthProbe = Callable[[], Awaitable[int]]


class QueueMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "queue_depth", "Work waiting right now: sync requests for a browser slot, jobs for a worker.",
            ["lane"], namespace=NAMESPACE, registry=registry)
        self.wait = Histogram(
            "queue_wait_seconds", "Time spent waiting, by lane (sync: for a browser slot; "
            "jobs: from submission to a worker's claim).",
            ["lane"], buckets=WAIT_BUCKETS, namespace=NAMESPACE, registry=registry)
        self._probes: dict[str, DepthProbe] = {}
        for lane in LANES:
            self.depth.labels(lane)
            self.wait.labels(lane)

    def observe_wait(self, lane: str, seconds: float) -> None:
        self.wait.labels(lane).observe(max(0.0, seconds))

    def observe_sync_wait(self, seconds: float) -> None:
        self.observe_wait(SYNC, seconds)

    def observe_job_wait(self, seconds: float) -> None:
        self.observe_wait(JOBS, seconds)

    def watch(self, lane: str, depth: Callable[[], int]) -> None:
        """Read ``lane``'s depth from ``depth()`` at every scrape (an in-process count)."""
        self.depth.labels(lane).set_function(depth)

    def probe(self, lane: str, depth: DepthProbe | None) -> None:
        """Ask ``depth()`` (a store round trip) before every scrape; None stops asking."""
        if depth is None:
            self._probes.pop(lane, None)
        else:
            self._probes[lane] = depth

    async def refresh(self) -> None:
        """Bring the probed depths up to date (each within PROBE_TIMEOUT; a failure keeps the last)."""
        for lane, depth in list(self._probes.items()):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    self.depth.labels(lane).set(await depth())
            except (LayerError, TimeoutError) as error:
                log.warning("reading the %s queue's depth failed: %s", lane, getattr(error, "message", "timed out"))
