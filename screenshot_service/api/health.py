"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import LIFECYCLE, POOL, STATE
from ..state.errors import StateError
from .common import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 only when the browser is up, the pool warm and the state store answers."""
    checks: dict[str, str] = {}
    pool = request.app[POOL]
    stats = pool.stats()
    checks["draining"] = "yes" if request.app[LIFECYCLE].draining or pool.draining else "no"
    checks["browser"] = "up" if pool.ready else "down"
    checks["pool_warm"] = f"{stats['warm']}/{stats['size']}"
    try:
        await request.app[STATE].ping()
        checks["state"] = "up"
    except StateError:
        checks["state"] = "down"
    ready = checks["draining"] == "no" and checks["browser"] == "up" and checks["state"] == "up"
    status = 200 if ready else 503
    headers = None if ready else {"Retry-After": "5"}
    return json_response({"status": "ready" if ready else "not_ready", "checks": checks, "pool": stats},
                         status=status, headers=headers)
