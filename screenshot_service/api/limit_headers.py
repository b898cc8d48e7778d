"""The rate and quota headers: admission's decisions (limits.admission.LimitState) in HTTP.

IETF httpapi RateLimit headers (draft form) plus the classic X-RateLimit-* trio, and
X-Quota-*.  Every authenticated response carries them, errors included.
"""

from __future__ import annotations

import math

from aiohttp import web

from ..appkeys import LIMITS
from ..limits.admission import LimitState
from ..limits.rate import RateDecision

# Every name limit_headers writes (documented per response in /v1/openapi.json).
LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                 "X-RateLimit-Reset", "X-Quota-Limit", "X-Quota-Remaining")


def limit_headers(limits: LimitState) -> dict[str, str]:
    headers = rate_headers(limits.plan, limits.rate) if limits.rate is not None else {}
    if limits.quota is not None:
        headers["X-Quota-Limit"] = str(limits.quota.limit)
        headers["X-Quota-Remaining"] = str(limits.quota.remaining)
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


async def add_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: what admission decided for this request, whatever the answer."""
    limits = request.get(LIMITS)
    if limits is None:
        return
    for name, value in limit_headers(limits).items():
        response.headers.setdefault(name, value)
