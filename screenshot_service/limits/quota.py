"""Monthly quota periods: calendar months in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Period:
    name: str  # "YYYY-MM"
    resets_at: datetime  # first instant of the next month, UTC

    @property
    def resets_at_iso(self) -> str:
        return self.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def seconds_left(self, now: datetime | None = None) -> float:
        return max(0.0, (self.resets_at - (now or datetime.now(UTC))).total_seconds())


def current_period(now: datetime | None = None) -> Period:
    now = now or datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return Period(name=f"{now.year:04d}-{now.month:02d}", resets_at=datetime(year, month, 1, tzinfo=UTC))
