"""The batch record and its public JSON (SPEC §4 Batches).

A batch is a list of ordinary jobs (their ``batch_id`` names it) plus what only
the batch has: the order of its items, its own webhook and its Idempotency-Key.
Its status is never stored: it is read off its items, so it cannot disagree
with them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from .models import CANCELED, FAILED, QUEUED, SUCCEEDED, Job, iso, parse_iso, record_text

BATCH_QUEUED, BATCH_RUNNING, BATCH_DONE, BATCH_CANCELED = "queued", "running", "done", "canceled"


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


@dataclass(frozen=True)
class Batch:
    id: str
    key_id: str
    job_ids: tuple[str, ...]  # item i is job_ids[i]
    base_url: str
    created_at: datetime
    webhook_url: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    request_id: str | None = None
    webhook_status: str | None = None  # None without webhook_url; else pending -> delivered | failed
    webhook_attempts: int = 0
    webhook_job: str | None = None  # the item job whose worker claimed the webhook (it alone sends it)

    @property
    def status_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/batches/{self.id}"

    def with_changes(self, **changes: Any) -> Batch:
        return replace(self, **changes)

    def to_json(self, items: Sequence[Job | None], *, for_webhook: bool = False) -> dict[str, Any]:
        statuses = [job.status if job is not None else CANCELED for job in items]
        ended = [job for job in items if job is not None and job.finished]
        body: dict[str, Any] = {
            "id": self.id,
            "status": batch_status(statuses),
            "total": len(self.job_ids),
            "succeeded": statuses.count(SUCCEEDED),
            "failed": statuses.count(FAILED),
            "canceled": statuses.count(CANCELED),
            "items": [_item(index, job_id, job) for index, (job_id, job) in enumerate(zip(self.job_ids, items, strict=True))],
            "status_url": self.status_url,
            "created_at": iso(self.created_at),
            "finished_at": None,
        }
        if len(ended) == len(items) and ended:
            body["finished_at"] = iso(max(job.finished_at or job.created_at for job in ended))
        if self.webhook_status is not None and not for_webhook:
            body["webhook"] = {"status": self.webhook_status, "attempts": self.webhook_attempts}
        return body

    # -- flat record (both stores) ---------------------------------------------------------
    def to_record(self) -> dict[str, str]:
        return {
            "id": self.id,
            "key_id": self.key_id,
            "job_ids": json.dumps(list(self.job_ids)),
            "base_url": self.base_url,
            "created_at": iso(self.created_at) or "",
            "webhook_url": self.webhook_url or "",
            "idempotency_key": self.idempotency_key or "",
            "fingerprint": self.fingerprint or "",
            "request_id": self.request_id or "",
            "webhook_status": self.webhook_status or "",
            "webhook_attempts": str(self.webhook_attempts),
            "webhook_job": self.webhook_job or "",
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> Batch:
        def text(name: str) -> str | None:
            return record_text(row, name)

        created = parse_iso(text("created_at"))
        assert created is not None
        return cls(
            id=str(row["id"]), key_id=str(row["key_id"]), job_ids=tuple(json.loads(str(row["job_ids"]))),
            base_url=str(row.get("base_url") or ""), created_at=created, webhook_url=text("webhook_url"),
            idempotency_key=text("idempotency_key"), fingerprint=text("fingerprint"), request_id=text("request_id"),
            webhook_status=text("webhook_status"), webhook_attempts=int(row.get("webhook_attempts") or 0),
            webhook_job=text("webhook_job"),
        )  # fmt: skip


def batch_status(statuses: Sequence[str]) -> str:
    """queued (no item started), running (some item not ended), else done, or canceled when
    any item was canceled."""
    if any(status not in (SUCCEEDED, FAILED, CANCELED) for status in statuses):
        return BATCH_QUEUED if all(status == QUEUED for status in statuses) else BATCH_RUNNING
    return BATCH_CANCELED if CANCELED in statuses else BATCH_DONE


def _item(index: int, job_id: str, job: Job | None) -> dict[str, Any]:
    return {
        "index": index,
        "job_id": job_id,
        "status": job.status if job is not None else CANCELED,
        "result": job.result if job is not None else None,
        "error": job.error if job is not None else None,
    }


@dataclass(frozen=True)
class BatchSubmitted:
    """What ``BatchStore.create`` did (as jobs' ``Submitted``)."""

    outcome: Literal["created", "existing", "full"]
    batch: Batch | None = None
    active: int = 0  # with "full": the key's unfinished jobs
