"""The jobs package's typed app keys (kept here so ``appkeys`` may re-export them)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .batch_service import BatchService
from .service import JobService


@dataclass(frozen=True)
class JobsTuning:
    """Knobs that are not configuration: tests shorten them, production keeps the defaults."""

    lease_seconds: float = 30.0  # a dead instance's jobs are taken over this long after it died
    poll_interval: float = 0.5  # how soon a job submitted on another instance is seen
    webhook_backoff: float = 1.0  # seconds before the 2nd webhook attempt, doubling after
    sweep_interval: float = 3600.0  # how often expired job records are deleted (SQLite)


JOBS = web.AppKey("jobs", JobService)
BATCHES = web.AppKey("batches", BatchService)
JOBS_TUNING = web.AppKey("jobs_tuning", JobsTuning)
JOBS_INSTALLED = web.AppKey("jobs_installed", bool)
