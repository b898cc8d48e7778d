"""Jobs on SQLite: the state store's file, our own connection and tables.

Opening the store does not mean every other process is gone: during a restart
the old process may still be draining, or another process may share the file.
A live lease is therefore never taken, not even at start-up; a job changes hands
only when its lease has run out (``lease_until`` is in the past, on this
machine's clock, the one every process on the file shares).  The one shortcut:
at start-up, leases held by a process of this host whose pid is gone (it was
killed) are dropped at once, so a crash-restart does not wait for them to run
out.  Owners are ``host:pid:random``, unique per runner, so no two runners, in
one process or two, ever pass for each other.  Every multi-statement change is
one ``BEGIN IMMEDIATE`` transaction, so it is atomic against the state store's
own connection to the same file and against other processes.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from ..state.sqlite_file import SqliteFile
from .models import CANCELED, QUEUED, RUNNING, UNFINISHED, Job, iso, now_utc
from .sqlite_batches import SqliteBatchStore
from .sqlite_rows import insert_job, job_of, unfinished
from .store import Submitted

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- queue order
    id TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '',
    webhook_url TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    reservation_id TEXT NOT NULL,
    period TEXT NOT NULL,
    idempotency_key TEXT,            -- NULL when none: the unique index ignores NULLs
    fingerprint TEXT NOT NULL DEFAULT '',
    runs INTEGER NOT NULL DEFAULT 0,
    webhook_status TEXT NOT NULL DEFAULT '',
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    request_id TEXT NOT NULL DEFAULT '',
    batch_id TEXT NOT NULL DEFAULT '',
    in_queue INTEGER NOT NULL DEFAULT 1,  -- still needs a worker (capture, settle or webhook)
    owner TEXT,                           -- the claiming worker while leased
    lease_until REAL,                     -- unix time the lease runs out
    expires_at REAL NOT NULL              -- unix time the record may be swept
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (key_id, idempotency_key);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (in_queue, seq);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (key_id, status);
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at);
"""
# For files made by an older version (SqliteFile skips a column already there).
MIGRATIONS = ("ALTER TABLE jobs ADD COLUMN request_id TEXT NOT NULL DEFAULT ''",
              "ALTER TABLE jobs ADD COLUMN batch_id TEXT NOT NULL DEFAULT ''",
              "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id) WHERE batch_id != ''")


class SqliteJobStore:
    def __init__(self, path: str | Path) -> None:
        self.file = SqliteFile(path, SCHEMA, what="job store", migrations=MIGRATIONS)
        self.batches = SqliteBatchStore(self.file)
        self.path = self.file.path
        self._run = self.file.run
        self._transaction = self.file.transaction
        with self.file.lock:
            # Killed processes of this host (see module doc): their leases go now; live ones stay.
            owners = [row[0] for row in self.file.db.execute("SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL")]
            for owner in filter(_owner_died, owners):
                self.file.db.execute(
                    "UPDATE jobs SET owner = NULL, lease_until = NULL,"
                    " status = CASE status WHEN ? THEN ? ELSE status END WHERE owner = ?",
                    (RUNNING, QUEUED, owner),
                )

    async def create(self, job: Job, *, max_active: int, ttl: float) -> Submitted:
        def create(db: sqlite3.Connection) -> Submitted:
            if job.idempotency_key is not None:
                row = db.execute(
                    "SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?",
                    (job.key_id, job.idempotency_key),
                ).fetchone()
                if row is not None:
                    return Submitted("existing", job_of(row))
            active = unfinished(db, job.key_id)
            if active >= max_active:
                return Submitted("full", active=active)
            insert_job(db, job, ttl)
            return Submitted("created", job)

        return await self._transaction(create)

    async def get(self, job_id: str) -> Job | None:
        row = await self._run(lambda db: db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
        return job_of(row) if row is not None else None

    async def by_idempotency_key(self, key_id: str, idempotency_key: str) -> Job | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?", (key_id, idempotency_key)
            ).fetchone()
        )
        return job_of(row) if row is not None else None

    async def claim(self, owner: str, lease: float, token: str = "") -> Job | None:
        # ``token`` is not needed here: a failed transaction rolled back, it took nothing.
        def claim(db: sqlite3.Connection) -> Job | None:
            now = time.time()
            row = db.execute(
                "SELECT seq, status, owner FROM jobs WHERE in_queue = 1"
                " AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?)"
                " ORDER BY owner IS NULL, seq LIMIT 1",  # run-out leases first: they were running
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET owner = ?, lease_until = ? WHERE seq = ?", (owner, now + lease, row[0]))
            # No run is counted when the claimant held it already (alive; see redis_scripts.CLAIM).
            if row["status"] in UNFINISHED and row["owner"] != owner:
                db.execute(
                    "UPDATE jobs SET status = ?, started_at = ?, runs = runs + 1 WHERE seq = ?",
                    (RUNNING, iso(now_utc()), row[0]),
                )
            return job_of(db.execute("SELECT * FROM jobs WHERE seq = ?", (row[0],)).fetchone())

        return await self._transaction(claim)

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        cursor = await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND owner = ?", (time.time() + lease, job_id, owner)
            )
        )
        return cursor.rowcount > 0

    async def finish(self, job: Job, owner: str, ttl: float) -> bool:
        record = job.to_record()
        fields = ("status", "finished_at", "result", "error", "webhook_status", "webhook_attempts")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cursor = await self._run(
            lambda db: db.execute(
                f"UPDATE jobs SET {assignments}, options = '', expires_at = ? WHERE id = ? AND owner = ?",
                (*(record[name] for name in fields), time.time() + ttl, job.id, owner),
            )
        )
        return cursor.rowcount > 0

    async def update_webhook(self, job_id: str, owner: str, status: str, attempts: int) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET webhook_status = ?, webhook_attempts = ? WHERE id = ? AND owner = ?",
                (status, attempts, job_id, owner),
            )
        )

    async def ack(self, job_id: str, owner: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET in_queue = 0, owner = NULL, lease_until = NULL WHERE id = ? AND owner = ?",
                (job_id, owner),
            )
        )

    async def release(self, job_id: str, owner: str) -> None:
        # A graceful give-back is not a crash: the run does not count against MAX_RUNS.
        await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET owner = NULL, lease_until = NULL,"
                " runs = CASE status WHEN ? THEN MAX(runs - 1, 0) ELSE runs END,"
                " started_at = CASE status WHEN ? THEN '' ELSE started_at END,"
                " status = CASE status WHEN ? THEN ? ELSE status END WHERE id = ? AND owner = ?",
                (RUNNING, RUNNING, RUNNING, QUEUED, job_id, owner),
            )
        )

    async def cancel(self, job_id: str, key_id: str, finished_at: datetime) -> Job | None:
        def cancel(db: sqlite3.Connection) -> Job | None:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, options = '' WHERE id = ? AND key_id = ? AND status = ?",
                (CANCELED, iso(finished_at), job_id, key_id, QUEUED),
            )
            row = db.execute("SELECT * FROM jobs WHERE id = ? AND key_id = ?", (job_id, key_id)).fetchone()
            return job_of(row) if row is not None else None

        return await self._transaction(cancel)

    async def queued(self) -> int:
        row = await self._run(
            lambda db: db.execute("SELECT COUNT(*) FROM jobs WHERE in_queue = 1 AND owner IS NULL").fetchone()
        )
        return int(row[0])

    async def sweep(self) -> int:
        cursor = await self._run(
            lambda db: db.execute("DELETE FROM jobs WHERE expires_at < ? AND in_queue = 0", (time.time(),))
        )
        return int(cursor.rowcount) + await self.batches.sweep()

    async def close(self) -> None:
        await self.file.close()


def _owner_died(owner: str) -> bool:
    """True only for an owner we can prove dead: a runner of this host whose process is gone.

    Anything else (another host, a pid that lives, a name of another shape) keeps its lease
    until it runs out.  A reused pid only makes us wait for the lease: never a steal.
    """
    parts = owner.rsplit(":", 2)  # host:pid:random (runner.py), the host may not be plain
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():  # this very process: its runners are alive
        return False
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.ESRCH
    return False
