"""MonitorService: what POST/GET/DELETE /v1/monitors do, without HTTP.

Creating checks everything that can be checked at once — the body (requests.py), the webhook
URL against the egress policy, the target, proxy and plan as a job's are (jobs/entry_check.py),
the plan's ``max_monitors`` (counted and stored in one atomic step, so two concurrent creates
cannot both take the last place) — and wakes the scheduler: the first run, which sets the
baseline, is due at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver
from ..egress.urls import host_of
from ..errors import MonitorLimitReached, NotFound
from ..jobs.entry_check import EntryCheck
from ..jobs.service import check_webhook_url
from ..limits.admission import Admission
from ..state.base import KeyRecord
from .models import MONITOR_ID, Monitor, new_monitor_id
from .requests import MAX_INTERVAL, parse_monitor_body
from .store import MonitorStore

log = logging.getLogger("screenshot_service.monitors")


class MonitorService:
    def __init__(self, store: MonitorStore, admission: Admission, policy: EgressPolicy, resolver: Resolver, *,
                 min_interval: int, max_interval: int = MAX_INTERVAL, proxy_pools: Collection[str] = (),
                 wake: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self.entry = EntryCheck(policy, resolver, proxy_pools)
        self.store = store
        self.admission = admission
        self.policy = policy
        self.resolver = resolver
        self.min_interval = min_interval
        self.max_interval = max_interval  # the captures' retention: the baseline must outlive the interval
        self.wake = wake  # a monitor is due: the scheduler looks now, not at its next poll

    async def create(self, key: KeyRecord, body: dict[str, Any], *, base_url: str) -> Monitor:
        plan = self.admission.plan_of(key)
        request = parse_monitor_body(body, min_interval=self.min_interval, max_interval=self.max_interval)
        await check_webhook_url(request.webhook_url, self.policy, self.resolver)
        await self.entry.check(key.plan, plan, request.parsed)  # as a job's: a 400 now, not failed runs
        now = time.time()
        monitor = Monitor(
            id=new_monitor_id(), key_id=key.id, options=request.options, interval=request.interval,
            threshold=request.threshold, webhook_url=request.webhook_url, base_url=base_url, created_at=now,
            next_run_at=now, name=request.name,
        )  # fmt: skip
        count = await self.store.create(monitor, max_monitors=plan.max_monitors)
        if count is not None:
            raise MonitorLimitReached(
                f"plan '{key.plan}' allows {plan.max_monitors} monitor(s) per key and this key has {count}; "
                "delete one first",
                details={"plan": key.plan, "max_monitors": plan.max_monitors, "monitors": count},
            )
        log.info("monitor %s created key=%s host=%s interval=%d s", monitor.id, key.id, host_of(request.url),
                 monitor.interval)
        self.wake()
        return monitor

    async def of_key(self, key: KeyRecord) -> list[Monitor]:
        return await self.store.of_key(key.id)

    async def get(self, key: KeyRecord, monitor_id: str) -> tuple[Monitor, list[dict[str, Any]]]:
        monitor = await self.store.get(monitor_id) if MONITOR_ID.fullmatch(monitor_id) else None
        if monitor is None or monitor.key_id != key.id:
            # Someone else's monitor is as invisible as a missing one: ids leak nothing.
            raise NotFound(f"no monitor {monitor_id!r} for this API key")
        return monitor, await self.store.runs(monitor_id)

    async def delete(self, key: KeyRecord, monitor_id: str) -> Monitor:
        monitor = await self.store.delete(monitor_id, key.id) if MONITOR_ID.fullmatch(monitor_id) else None
        if monitor is None:
            raise NotFound(f"no monitor {monitor_id!r} for this API key")
        log.info("monitor %s deleted key=%s", monitor_id, key.id)
        return monitor
