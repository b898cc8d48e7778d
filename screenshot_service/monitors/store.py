"""What the monitors need from their store; SQLite (sqlite_store.py) or Redis (redis_store.py),
chosen by ``state.backend`` like the job store, so every instance on one state sees one set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .models import Monitor


@dataclass(frozen=True)
class Claim:
    """What one claim found: a run to make now, or how long until the next one is due."""

    monitor: Monitor | None = None  # claimed: its next_run_at already moved to the following slot
    scheduled_at: float = 0.0  # the slot this run was due at (its lag is measured from it)
    now: float = 0.0  # the store's clock when it claimed
    wait: float | None = None  # nothing due: seconds until the earliest monitor is (None: there is none)


class MonitorStore(Protocol):
    async def create(self, monitor: Monitor, *, max_monitors: int) -> int | None:
        """Store it unless the key has ``max_monitors`` already (then: how many it has), atomically."""

    async def get(self, monitor_id: str) -> Monitor | None: ...

    async def of_key(self, key_id: str) -> list[Monitor]:
        """The key's monitors, oldest first."""

    async def runs(self, monitor_id: str) -> list[dict[str, Any]]:
        """Its last runs' JSON, newest first (models.MAX_RUNS_KEPT at most)."""

    async def delete(self, monitor_id: str, key_id: str) -> Monitor | None:
        """Remove the key's monitor and its runs; the monitor as it was, None if there was none."""

    async def claim(self) -> Claim:
        """Take the most overdue run, if any, by moving its monitor's next_run_at to the following
        slot in one atomic step: however many instances ask, each slot is claimed once."""

    async def record_run(self, monitor_id: str, run: dict[str, Any], *, baseline: str | None,
                         changed: bool) -> Monitor | None:  # fmt: skip
        """Add a run (kept: the last MAX_RUNS_KEPT); it becomes last_run, and last_change if
        ``changed``; ``baseline`` (a good run's capture id) replaces the baseline.  None if the
        monitor was deleted meanwhile."""

    async def count(self) -> int:
        """Monitors in the store, all keys (a gauge)."""

    async def close(self) -> None: ...
