"""Asynchronous jobs: durable queue, workers, signed webhooks, idempotency (SPEC §2, §4).

``install_jobs(app)`` adds the /v1/jobs routes and the job workers' cleanup
context to an app made by ``create_app``.  The import is deferred so that
``appkeys`` can re-export ``jobs.keys`` without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from .store import JobStore


def install_jobs(
    app: web.Application,
    *,
    store: JobStore | None = None,
    lease_seconds: float | None = None,
    poll_interval: float | None = None,
    webhook_backoff: float | None = None,
    sweep_interval: float | None = None,
) -> None:
    """Add /v1/jobs and the workers to ``app`` (again: only adjust the tuning; see install.py)."""
    from .install import install

    install(app, store=store, lease_seconds=lease_seconds, poll_interval=poll_interval,
            webhook_backoff=webhook_backoff, sweep_interval=sweep_interval)  # fmt: skip
