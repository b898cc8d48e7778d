"""GET /v1/usage: the calling key's plan, rate and this month's quota."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import ADMISSION, STATE
from ..limits.quota import current_period
from .common import caller, json_response


async def get_usage(request: web.Request) -> web.Response:
    key = await caller(request)
    plan = request.app[ADMISSION].plan_of(key)
    period = current_period()
    used = await request.app[STATE].credits_used(key.id, period.name)
    return json_response({
        "key_id": key.id,
        "plan": key.plan,
        "rate": {"requests_per_second": plan.requests_per_second, "burst": plan.burst},
        "concurrency": plan.concurrency,
        "quota": {
            "period": period.name,
            "limit": plan.monthly_captures,
            "used": used,
            "remaining": max(0, plan.monthly_captures - used),
            "resets_at": period.resets_at_iso,
        },
        "max_queued_jobs": plan.max_queued_jobs,
    })
