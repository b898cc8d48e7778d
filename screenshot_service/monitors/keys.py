"""The monitors package's typed app keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .scheduler import MonitorScheduler
from .service import MonitorService


@dataclass(frozen=True)
class MonitorsTuning:
    """Knobs that are not configuration: tests shorten them, production keeps the defaults."""

    poll_interval: float = 1.0  # how soon a monitor created on another instance is seen


MONITORS = web.AppKey("monitors", MonitorService)
MONITOR_SCHEDULER = web.AppKey("monitor_scheduler", MonitorScheduler)
MONITORS_TUNING = web.AppKey("monitors_tuning", MonitorsTuning)
MONITORS_INSTALLED = web.AppKey("monitors_installed", bool)
