"""The rate and quota headers: admission's decisions (limits.admission.LimitState) in HTTP.

IETF httpapi RateLimit headers (draft form) plus the classic X-RateLimit-* trio, and
X-Quota-*.  Every authenticated response carries them, errors included.
"""

from __future__ import annotations

import math

from aiohttp import web

from ..appkeys import LIMITS
from ..limits.admission import LimitState, QuotaStanding
from ..limits.rate import RateDecision


def limit_headers(limits: LimitState) -> dict[str, str]:
    headers = rate_headers(limits.plan, limits.rate) if limits.rate is not None else {}
    if limits.quota is not None:
        headers.update(quota_headers(limits.quota))
    return headers


def rate_headers(plan_name: str, decision: RateDecision) -> dict[str, str]:
    window = max(1, math.ceil(decision.window))
    reset = max(0, math.ceil(decision.reset_after))
    return {
        "RateLimit-Policy": f'"{plan_name}";q={decision.limit};w={window}',
        "RateLimit": f'"{plan_name}";r={decision.remaining};t={reset}',
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(reset),
    }


def quota_headers(quota: QuotaStanding) -> dict[str, str]:
    return {"X-Quota-Limit": str(quota.limit), "X-Quota-Remaining": str(quota.remaining)}


# Every name limit_headers writes (documented per response in /v1/openapi.json), read off the writers.
LIMIT_HEADERS = (*rate_headers("", RateDecision(allowed=True, limit=1, remaining=1, reset_after=0.0, retry_after=0.0, window=1.0)), *quota_headers(QuotaStanding(0, 0)))


async def add_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: what admission decided for this request, whatever the answer."""
    limits = request.get(LIMITS)
    if limits is None:
        return
    for name, value in limit_headers(limits).items():
        response.headers.setdefault(name, value)
