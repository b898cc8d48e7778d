"""Job rows in the SQLite job store's table, shared by its job and batch halves."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .models import UNFINISHED, Job


def unfinished(db: sqlite3.Connection, key_id: str) -> int:
    """The key's queued or running jobs (``max_queued_jobs``)."""
    query = f"SELECT COUNT(*) FROM jobs WHERE key_id = ? AND status IN ({marks(UNFINISHED)})"
    return int(db.execute(query, (key_id, *UNFINISHED)).fetchone()[0])


def insert_job(db: sqlite3.Connection, job: Job, ttl: float) -> None:
    record: dict[str, Any] = dict(job.to_record())
    record["idempotency_key"] = job.idempotency_key  # NULL, not "", when absent
    record["expires_at"] = time.time() + ttl
    db.execute(f"INSERT INTO jobs ({', '.join(record)}) VALUES ({marks(tuple(record))})", tuple(record.values()))


def marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in values)


def job_of(row: sqlite3.Row) -> Job:
    return Job.from_record(dict(zip(row.keys(), row, strict=True)))
