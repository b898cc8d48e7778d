"""The job record and its public JSON (SPEC §4).

A job is stored as one flat record in whichever backend holds it; this module
is the single place that knows its fields and how they look on the wire, so
the SQLite and Redis stores and the API all agree.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..state.base import Reservation

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
UNFINISHED = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELED)

# Webhook delivery of a terminal job (None when the job has no webhook_url).
WEBHOOK_PENDING, WEBHOOK_DELIVERED, WEBHOOK_FAILED = "pending", "delivered", "failed"


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)  # 96 random bits: ids are not guessable across keys


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z: jobs are short, seconds are too coarse."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class Job:
    id: str
    key_id: str
    status: str
    # The validated capture options as JSON; dropped once the job is finished
    # (they may hold html, cookies or bucket credentials, needed only to run).
    options: dict[str, Any] | None
    webhook_url: str | None
    base_url: str  # the public base the job was submitted on: status_url and file URLs use it
    created_at: datetime
    reservation_id: str
    period: str  # the quota month the reserved credit belongs to
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None  # hash of the request body, to tell a replay from a reuse
    runs: int = 0  # capture runs started (a job that kills its process each time is failed, not retried forever)
    webhook_status: str | None = None
    webhook_attempts: int = 0
    request_id: str | None = None  # the submitting request's: the job's log records name it too
    batch_id: str | None = None  # the batch it is an item of (it then sends no webhook of its own)

    @property
    def reservation(self) -> Reservation:
        return Reservation(id=self.reservation_id, key_id=self.key_id, period=self.period)

    @property
    def status_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/jobs/{self.id}"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def with_changes(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def to_json(self, *, for_webhook: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "status_url": self.status_url,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "result": self.result,
            "error": self.error,
        }
        if self.batch_id is not None:
            body["batch_id"] = self.batch_id  # an item of that batch (GET /v1/batches/{id})
        if self.webhook_status is not None and not for_webhook:
            # The webhook body is the final job itself; its own delivery state only shows on GET.
            body["webhook"] = {"status": self.webhook_status, "attempts": self.webhook_attempts}
        return body

    # -- flat record (both stores) ---------------------------------------------------------
    def to_record(self) -> dict[str, str]:
        """Every field as text, None as "" (a Redis hash and SQLite columns alike)."""
        return {
            "id": self.id,
            "key_id": self.key_id,
            "status": self.status,
            "options": _dump(self.options),
            "webhook_url": self.webhook_url or "",
            "base_url": self.base_url,
            "created_at": iso(self.created_at) or "",
            "started_at": iso(self.started_at) or "",
            "finished_at": iso(self.finished_at) or "",
            "result": _dump(self.result),
            "error": _dump(self.error),
            "reservation_id": self.reservation_id,
            "period": self.period,
            "idempotency_key": self.idempotency_key or "",
            "fingerprint": self.fingerprint or "",
            "runs": str(self.runs),
            "webhook_status": self.webhook_status or "",
            "webhook_attempts": str(self.webhook_attempts),
            "request_id": self.request_id or "",
            "batch_id": self.batch_id or "",
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> Job:
        def text(name: str) -> str | None:
            return record_text(row, name)

        created = parse_iso(text("created_at"))
        assert created is not None
        return cls(
            id=str(row["id"]),
            key_id=str(row["key_id"]),
            status=str(row["status"]),
            options=_load(text("options")),
            webhook_url=text("webhook_url"),
            base_url=str(row.get("base_url") or ""),
            created_at=created,
            started_at=parse_iso(text("started_at")),
            finished_at=parse_iso(text("finished_at")),
            result=_load(text("result")),
            error=_load(text("error")),
            reservation_id=str(row["reservation_id"]),
            period=str(row["period"]),
            idempotency_key=text("idempotency_key"),
            fingerprint=text("fingerprint"),
            runs=int(row.get("runs") or 0),
            webhook_status=text("webhook_status"),
            webhook_attempts=int(row.get("webhook_attempts") or 0),
            request_id=text("request_id"),
            batch_id=text("batch_id"),
        )


def record_text(row: dict[str, Any], name: str) -> str | None:
    """A flat record's field as text; "" (how both stores write None) and a missing one as None."""
    value = row.get(name)
    return str(value) if value not in (None, "") else None


def _dump(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None
