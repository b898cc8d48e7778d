"""One monitor run: charge, capture, compare, record, notify.

    reserve a credit (quota used up: the run fails with quota_exceeded, nothing charged)
    -> capture through the pipeline in the jobs lane, compared with the previous good run
    -> commit the credit (anything else refunds it) -> record the run -> webhook if changed

The first run has no baseline: it only becomes one.  A run that failed, or whose image is not
the page (capture/diff_options.py NOT_A_BASELINE), never replaces the baseline.  A process that dies
mid-run leaves its reservation to run out and be refunded by the ledger's reclaim; the run
itself is not repeated — the monitor runs again at its next slot.  A run that finds its key
revoked or deleted deletes the monitor instead: nothing could ever be charged or sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..browser.pool import JOBS
from ..capture.declaration import JOB
from ..capture.options import CaptureOptions
from ..capture.pipeline import SETTLE_MARGIN, CapturePipeline, Order
from ..capture.service import CaptureResult
from ..egress.urls import host_of
from ..error_map import as_api_error
from ..errors import ApiError, InternalError, InvalidParameter
from ..faults import LayerError
from ..jobs.capture_retries import capture_with_retries, longest
from ..jobs.webhooks import WebhookSender
from ..limits.admission import Admission, LimitState
from ..log_context import JOB_ID, bound
from ..monitor_metrics import MonitorMetrics
from ..state.base import KeyRecord, StateStore
from ..state.errors import StateUnavailable
from .models import FAILED, SUCCEEDED, Monitor, Run
from .store import Claim, MonitorStore

log = logging.getLogger("screenshot_service.monitors")

Outcome = tuple[dict[str, Any] | None, dict[str, Any] | None]  # (result, error): one of them


@dataclass(frozen=True)
class Notice:
    """A change to report: the signed POST of ``body`` to the monitor's webhook."""

    monitor_id: str
    url: str
    body: bytes
    secret: str = field(repr=False)


class MonitorRuns:
    def __init__(self, store: MonitorStore, state: StateStore, admission: Admission, pipeline: CapturePipeline,
                 webhooks: WebhookSender, metrics: MonitorMetrics) -> None:  # fmt: skip
        self.store, self.state, self.admission, self.pipeline = store, state, admission, pipeline
        self.webhooks = webhooks
        self.metrics = metrics

    async def run(self, claim: Claim) -> Notice | None:
        """Capture, record; the webhook to send if the page changed (sent by ``notify``, once the
        run's slot is free: a slow receiver must not hold back other monitors' runs)."""
        monitor = claim.monitor
        assert monitor is not None
        self.metrics.observe_lag(claim.now - claim.scheduled_at)
        with bound(JOB_ID, monitor.id):  # every record of the run names the monitor
            return await self._run(monitor, claim.scheduled_at)

    async def notify(self, notice: Notice) -> None:
        with bound(JOB_ID, notice.monitor_id):
            await self.webhooks.deliver(notice.url, notice.body, notice.secret, job_id=notice.monitor_id)

    async def _run(self, monitor: Monitor, scheduled_at: float) -> Notice | None:
        started = time.time()
        key: KeyRecord | None = None
        try:
            key = await self.state.key_by_id(monitor.key_id)
            if key is None or key.revoked:
                await self._stop(monitor)
                return None
            result, error = await self._charged(monitor, key)
        except ApiError as failure:  # the credit could not be reserved (quota_exceeded, ...)
            result, error = None, failure.to_dict()["error"]
        except LayerError as failure:  # the state store is away: the monitor runs again next slot
            result, error = None, as_api_error(failure).to_dict()["error"]
        run = Run(at=started, scheduled_at=scheduled_at, status=SUCCEEDED if error is None else FAILED,
                  result=result, error=error)  # fmt: skip
        ratio = run.changed_ratio
        # A run that may not show the page (blank, an error page, not ready) reports no change either.
        # A page that grew or shrank changed too, even where the common area is the same.
        changed = run.good and monitor.baseline is not None and ratio is not None and (
            ratio >= monitor.threshold or run.size_changed)
        run = replace(run, notified=changed)
        stored = await self.store.record_run(monitor.id, run.to_json(), changed=changed,
                                             baseline=str(result["id"]) if result and run.good else None)  # fmt: skip
        outcome = FAILED if error else "changed" if changed else "unchanged" if ratio is not None else "baseline"
        self.metrics.count_run(outcome)
        log.info("monitor run: %s host=%s %s", monitor.id, host_of(monitor.options.get("url")),
                 outcome if error is None else f"failed: {error.get('code')}")  # fmt: skip
        if stored is None:
            log.info("monitor %s was deleted during its run: nothing sent", monitor.id)
        elif changed and key is not None:
            body = json.dumps({"monitor": stored.to_json(), "run": run.to_json()}).encode()
            return Notice(monitor.id, monitor.webhook_url, body, key.webhook_secret)
        return None

    async def _stop(self, monitor: Monitor) -> None:
        """Its key was revoked or deleted: nothing can be charged or notified any more, for good
        (a revoked key stays revoked), so the monitor goes, its runs with it."""
        await self.store.delete(monitor.id, monitor.key_id)
        log.info("monitor %s deleted: its API key %s is revoked or gone", monitor.id, monitor.key_id)

    async def _charged(self, monitor: Monitor, key: KeyRecord) -> Outcome:
        plan = self.admission.plan_of(key)
        # The credit waits through every retry of a busy or crashed browser, and a second capture
        # when the baseline has expired: a good run is never refused its commit for being patient.
        lease = 2 * longest(self.pipeline.service.deadline_seconds) + SETTLE_MARGIN
        reservation, give_up_at = await self.admission.reserve(key, plan, LimitState(), lease)
        committed = False
        try:
            result = (await self._capture(monitor, key)).to_json()
            committed = await self.admission.ledger.commit(reservation, give_up_at)
            if not committed:
                raise StateUnavailable("the run could not be recorded in time, so it is not charged")
            return result, None
        except ApiError as failure:
            return None, failure.to_dict()["error"]
        except LayerError as failure:
            return None, as_api_error(failure).to_dict()["error"]
        except Exception:
            log.exception("monitor %s: unexpected error", monitor.id)
            return None, InternalError(f"internal error; quote monitor id {monitor.id}").to_dict()["error"]
        finally:
            if not committed:
                await self.admission.ledger.refund(reservation, overrule_commit=True)

    async def _capture(self, monitor: Monitor, key: KeyRecord) -> CaptureResult:
        try:
            return await self._capture_against(monitor, key, monitor.baseline)
        except InvalidParameter as refused:
            if monitor.baseline is None or "compare_to" not in refused.details.get("fields", {}):
                raise
            # The baseline's capture expired with the key's retention: this run sets a new one.
            log.info("monitor %s: its baseline capture is gone; this run becomes the new one", monitor.id)
            return await self._capture_against(monitor, key, None)

    async def _capture_against(self, monitor: Monitor, key: KeyRecord, baseline: str | None) -> CaptureResult:
        options = dict(monitor.options)
        if baseline is not None:
            options["compare_to"] = baseline
        opts = CaptureOptions.from_json(options, place=JOB)
        loop = asyncio.get_running_loop()
        # With its key: the plan as it is now decides what the run may use (a proxy pool taken
        # away since the monitor was created fails the run naming it).
        return await capture_with_retries(self.pipeline, lambda: Order(
            opts=opts, started=loop.time(), key=key, account=monitor.key_id, base_url=monitor.base_url,
            lane=JOBS, admit=False,
        ))
