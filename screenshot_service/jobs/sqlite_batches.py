"""Batches on SQLite: a table beside the jobs table, on the job store's own connection.

Creating a batch, canceling it and claiming its webhook are each one
``BEGIN IMMEDIATE`` transaction on that connection, so they are atomic against
the job queue's own steps and against other processes on the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..state.sqlite_file import SqliteFile
from .batch_models import Batch, BatchSubmitted
from .models import CANCELED, QUEUED, TERMINAL, WEBHOOK_PENDING, Job, iso
from .sqlite_rows import insert_job, job_of, marks, unfinished

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    job_ids TEXT NOT NULL,
    base_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    webhook_url TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,            -- NULL when none: the unique index ignores NULLs
    fingerprint TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    webhook_status TEXT NOT NULL DEFAULT '',
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_job TEXT NOT NULL DEFAULT '',
    expires_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS batches_idempotency ON batches (key_id, idempotency_key);
CREATE INDEX IF NOT EXISTS batches_expiry ON batches (expires_at);
"""


class SqliteBatchStore:
    def __init__(self, file: SqliteFile) -> None:
        self.file = file
        with file.lock:
            file.db.executescript(SCHEMA)

    async def create(self, batch: Batch, jobs: Sequence[Job], *, max_active: int, ttl: float) -> BatchSubmitted:
        record: dict[str, Any] = dict(batch.to_record())
        record["idempotency_key"] = batch.idempotency_key
        record["expires_at"] = time.time() + ttl

        def create(db: sqlite3.Connection) -> BatchSubmitted:
            if batch.idempotency_key is not None:
                row = db.execute("SELECT * FROM batches WHERE key_id = ? AND idempotency_key = ?",
                                 (batch.key_id, batch.idempotency_key)).fetchone()  # fmt: skip
                if row is not None:
                    return BatchSubmitted("existing", _batch(row))
            active = unfinished(db, batch.key_id)
            if active + len(jobs) > max_active:
                return BatchSubmitted("full", active=active)
            db.execute(f"INSERT INTO batches ({', '.join(record)}) VALUES ({marks(tuple(record))})",
                       tuple(record.values()))  # fmt: skip
            for job in jobs:
                insert_job(db, job, ttl)
            return BatchSubmitted("created", batch)

        return await self.file.transaction(create)

    async def get(self, batch_id: str) -> Batch | None:
        row = await self.file.run(lambda db: db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone())
        return _batch(row) if row is not None else None

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Batch | None:
        row = await self.file.run(
            lambda db: db.execute(
                "SELECT * FROM batches WHERE key_id = ? AND idempotency_key = ?", (key_id, idempotency_key)
            ).fetchone()
        )
        return _batch(row) if row is not None else None

    async def items(self, batch: Batch) -> list[Job | None]:
        rows = await self.file.run(lambda db: db.execute("SELECT * FROM jobs WHERE batch_id = ?", (batch.id,)).fetchall())
        by_id = {job.id: job for job in map(job_of, rows)}
        return [by_id.get(job_id) for job_id in batch.job_ids]

    async def cancel(self, batch_id: str, key_id: str, finished_at: datetime) -> list[Job] | None:
        def cancel(db: sqlite3.Connection) -> list[Job] | None:
            if db.execute("SELECT 1 FROM batches WHERE id = ? AND key_id = ?", (batch_id, key_id)).fetchone() is None:
                return None
            queued = [job_of(row) for row in db.execute(
                "SELECT * FROM jobs WHERE batch_id = ? AND status = ?", (batch_id, QUEUED)).fetchall()]  # fmt: skip
            db.execute("UPDATE jobs SET status = ?, finished_at = ?, options = '' WHERE batch_id = ? AND status = ?",
                       (CANCELED, iso(finished_at), batch_id, QUEUED))  # fmt: skip
            return [job.with_changes(status=CANCELED, finished_at=finished_at, options=None) for job in queued]

        return await self.file.transaction(cancel)

    async def claim_webhook(self, batch_id: str, job_id: str) -> Batch | None:
        def claim(db: sqlite3.Connection) -> Batch | None:
            row = db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None or row["webhook_status"] != WEBHOOK_PENDING or row["webhook_job"] not in ("", job_id):
                return None
            open_items = db.execute(
                f"SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND status NOT IN ({marks(TERMINAL)})",
                (batch_id, *TERMINAL),
            ).fetchone()[0]
            if open_items:
                return None
            db.execute("UPDATE batches SET webhook_job = ? WHERE id = ?", (job_id, batch_id))
            return _batch(row).with_changes(webhook_job=job_id)

        return await self.file.transaction(claim)

    async def update_webhook(self, batch_id: str, job_id: str, status: str, attempts: int) -> None:
        await self.file.run(
            lambda db: db.execute(
                "UPDATE batches SET webhook_status = ?, webhook_attempts = ? WHERE id = ? AND webhook_job = ?",
                (status, attempts, batch_id, job_id),
            )
        )

    async def sweep(self) -> int:
        cursor = await self.file.run(lambda db: db.execute("DELETE FROM batches WHERE expires_at < ?", (time.time(),)))
        return int(cursor.rowcount)


def _batch(row: sqlite3.Row) -> Batch:
    return Batch.from_record(dict(zip(row.keys(), row, strict=True)))
