"""GET /v1/usage: the calling key's plan, rate and this month's quota."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import ADMISSION, LIMITS
from ..limits.quota import current_period
from .common import caller, json_response


async def get_usage(request: web.Request) -> web.Response:
    key = await caller(request)
    plan = request.app[ADMISSION].plan_of(key)
    period = current_period()
    quota = request[LIMITS].quota  # read by the rate check, as for every authenticated answer
    assert quota is not None
    return json_response({
        "key_id": key.id,
        "plan": key.plan,
        "rate": {"requests_per_second": plan.requests_per_second, "burst": plan.burst},
        "concurrency": plan.concurrency,
        "quota": {
            "period": period.name,
            "limit": quota.limit,
            "used": quota.used,
            "remaining": quota.remaining,
            "resets_at": period.resets_at_iso,
        },
        "max_queued_jobs": plan.max_queued_jobs,
    })
