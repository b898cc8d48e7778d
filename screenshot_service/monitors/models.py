"""The monitor record, its runs, and their public JSON (SPEC §4 "Monitors").

One place knows the fields, so the SQLite and Redis stores, the API and the webhook agree.
Times are unix seconds inside and ISO-8601 on the wire.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..capture.diff_options import NOT_A_BASELINE

MAX_RUNS_KEPT = 50  # GET /v1/monitors/{id} shows this many runs, newest first; older ones are dropped
MONITOR_ID = re.compile(r"^mon_[0-9a-f]{24}$")

# Options sent to the target that may carry credentials: kept to run the monitor, never echoed
# in the API, the webhook or a log line.
SECRET_OPTIONS = ("headers", "cookies", "proxy")

SUCCEEDED, FAILED = "succeeded", "failed"


def new_monitor_id() -> str:
    return "mon_" + secrets.token_hex(12)  # 96 random bits: ids are not guessable across keys


def iso(unix: float | None) -> str | None:
    if unix is None:
        return None
    moment = datetime.fromtimestamp(unix, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Monitor:
    id: str
    key_id: str
    options: dict[str, Any]  # the capture options as given (url included), secrets too: needed to run
    interval: int  # seconds between runs
    threshold: float  # changed_ratio at or above which the webhook is sent
    webhook_url: str
    base_url: str  # the public base it was created on: status_url and file URLs use it
    created_at: float
    next_run_at: float
    name: str | None = None
    last_run: dict[str, Any] | None = None
    last_change: dict[str, Any] | None = None  # the last run that notified
    baseline: str | None = None  # capture id of the last good run: the next run compares with it

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/v1/monitors/{self.id}"

    def following_slot(self, now: float) -> float:
        """The first slot of the schedule after ``now``: slots missed while nothing ran are
        skipped, so a monitor due during downtime runs once when it is back, not once per slot."""
        missed = max(0, int((now - self.next_run_at) // self.interval) + 1)
        return self.next_run_at + missed * self.interval

    def to_json(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.options.items() if k not in SECRET_OPTIONS and k != "url"}
        return {
            "id": self.id, "status_url": self.status_url, "name": self.name, "url": self.options.get("url"),
            "interval": self.interval, "threshold": self.threshold, "webhook_url": self.webhook_url,
            "options": shown, "next_run_at": iso(self.next_run_at), "created_at": iso(self.created_at),
            "last_run": self.last_run, "last_change": self.last_change,
        }  # fmt: skip

    # -- storage: the fixed part as one JSON text, the moving parts as their own fields -------
    def static_record(self) -> str:
        return json.dumps({
            "id": self.id, "key_id": self.key_id, "options": self.options, "interval": self.interval,
            "threshold": self.threshold, "webhook_url": self.webhook_url, "base_url": self.base_url,
            "created_at": self.created_at, "name": self.name,
        })  # fmt: skip

    @classmethod
    def from_record(cls, static: str, *, next_run_at: float, last_run: str | None, last_change: str | None,
                    baseline: str | None) -> Monitor:  # fmt: skip
        fixed = json.loads(static)
        return cls(**fixed, next_run_at=next_run_at, last_run=_loads(last_run), last_change=_loads(last_change),
                   baseline=baseline or None)  # fmt: skip


def _loads(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None


@dataclass(frozen=True)
class Run:
    """One run as GET shows it: ``{"at", "status", "changed_ratio", "result", "error"}``."""

    at: float  # when it started
    scheduled_at: float  # the slot it was due at: each slot runs once, however many instances
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    notified: bool = False  # its change reached the threshold: the webhook was sent

    @property
    def changed_ratio(self) -> float | None:
        diff = (self.result or {}).get("diff")
        ratio = diff.get("changed_ratio") if isinstance(diff, dict) else None
        return float(ratio) if isinstance(ratio, int | float) else None

    @property
    def size_changed(self) -> bool:
        diff = (self.result or {}).get("diff")
        return isinstance(diff, dict) and diff.get("size_changed") is True

    @property
    def good(self) -> bool:
        """May later runs compare with it?  Succeeded, with a capture id, and none of the warnings
        that mean the image may not be the page (blank, an error page, not ready: SPEC §3.3)."""
        if self.status != SUCCEEDED or not self.result or not self.result.get("id"):
            return False
        codes = {w.get("code") for w in self.result.get("warnings") or [] if isinstance(w, dict)}
        return not codes & NOT_A_BASELINE

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "scheduled_at": iso(self.scheduled_at), "status": self.status, "changed_ratio": self.changed_ratio,
                "result": self.result, "error": self.error, "notified": self.notified}  # fmt: skip
