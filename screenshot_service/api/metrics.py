"""GET /metrics (Prometheus text format) and the one call that wires metrics into an app.

Unauthenticated by design, like every Prometheus target: it carries no keys,
URLs or hosts, only counts.  Expose it to the scraper only (firewall, or an
internal listener in the load balancer); see the README's deployment section.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..appkeys import METRICS, POOL
from ..browser.admission import SYNC
from ..metrics import Metrics, metrics_middleware
from .error_middleware import error_middleware


def install_metrics(app: web.Application) -> Metrics:
    """Create the app's Metrics, its middleware and GET /metrics (idempotent).

    Call before the app starts (aiohttp freezes the middleware list at start-up).
    The middleware goes right before ``error_middleware``, i.e. outside it, so it
    counts the status the client actually receives.
    """
    if METRICS in app:
        return app[METRICS]

    def pool_stats() -> dict[str, int] | None:
        # The pool arrives with its cleanup context; a scrape before that has no pool lines.
        return app[POOL].stats() if POOL in app else None

    metrics = Metrics(pool_stats)
    metrics.queues.watch(SYNC, lambda: app[POOL].admission.waiting if POOL in app else 0)
    app[METRICS] = metrics
    chain = app.middlewares
    position = chain.index(error_middleware) if error_middleware in chain else len(chain)
    chain.insert(position, metrics_middleware(metrics))
    app.router.add_get("/metrics", get_metrics)
    return metrics


async def get_metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await metrics.queues.refresh()  # depths kept in a store (the jobs queue) are read now
    return web.Response(
        body=metrics.render(),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )
