"""Monitors on SQLite: the state store's file, our own connection and tables.

Every change that reads before it writes is one ``BEGIN IMMEDIATE`` transaction, so it is atomic
against every other connection to the file, in this process or another: two processes claiming
at once see the same row, but only the first moves its ``next_run_at``; the second then finds
the monitor no longer due.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..state.sqlite_file import SqliteFile
from .models import MAX_RUNS_KEPT, Monitor
from .store import Claim

SCHEMA = """
CREATE TABLE IF NOT EXISTS monitors (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    interval INTEGER NOT NULL,
    next_run_at REAL NOT NULL,       -- unix time of the next slot
    record TEXT NOT NULL,            -- the fixed part (models.Monitor.static_record)
    last_run TEXT NOT NULL DEFAULT '',
    last_change TEXT NOT NULL DEFAULT '',
    baseline TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS monitors_key ON monitors (key_id, created_at);
CREATE INDEX IF NOT EXISTS monitors_due ON monitors (next_run_at);
CREATE TABLE IF NOT EXISTS monitor_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id TEXT NOT NULL,
    run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_runs_of ON monitor_runs (monitor_id, seq);
"""


class SqliteMonitorStore:
    def __init__(self, path: str | Path) -> None:
        self.file = SqliteFile(path, SCHEMA, what="monitor store")

    async def create(self, monitor: Monitor, *, max_monitors: int) -> int | None:
        def create(db: sqlite3.Connection) -> int | None:
            count = int(db.execute("SELECT COUNT(*) FROM monitors WHERE key_id = ?", (monitor.key_id,)).fetchone()[0])
            if count >= max_monitors:
                return count
            db.execute(
                "INSERT INTO monitors (id, key_id, created_at, interval, next_run_at, record) VALUES (?, ?, ?, ?, ?, ?)",
                (monitor.id, monitor.key_id, monitor.created_at, monitor.interval, monitor.next_run_at,
                 monitor.static_record()),
            )  # fmt: skip
            return None

        return await self.file.transaction(create)

    async def get(self, monitor_id: str) -> Monitor | None:
        row = await self.file.run(lambda db: db.execute("SELECT * FROM monitors WHERE id = ?", (monitor_id,)).fetchone())
        return _monitor(row) if row is not None else None

    async def of_key(self, key_id: str) -> list[Monitor]:
        rows = await self.file.run(lambda db: db.execute(
            "SELECT * FROM monitors WHERE key_id = ? ORDER BY created_at, id", (key_id,)).fetchall())
        return [_monitor(row) for row in rows]

    async def runs(self, monitor_id: str) -> list[dict[str, Any]]:
        rows = await self.file.run(lambda db: db.execute(
            "SELECT run FROM monitor_runs WHERE monitor_id = ? ORDER BY seq DESC LIMIT ?",
            (monitor_id, MAX_RUNS_KEPT)).fetchall())  # fmt: skip
        return [json.loads(row[0]) for row in rows]

    async def delete(self, monitor_id: str, key_id: str) -> Monitor | None:
        def delete(db: sqlite3.Connection) -> Monitor | None:
            row = db.execute("SELECT * FROM monitors WHERE id = ? AND key_id = ?", (monitor_id, key_id)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM monitors WHERE id = ?", (monitor_id,))
            db.execute("DELETE FROM monitor_runs WHERE monitor_id = ?", (monitor_id,))
            return _monitor(row)

        return await self.file.transaction(delete)

    async def claim(self) -> Claim:
        # Looked at without a write lock first: most polls find nothing due, and must not hold
        # up the state store's writes on the same file.
        earliest = await self.file.run(lambda db: db.execute("SELECT MIN(next_run_at) FROM monitors").fetchone()[0])
        now = time.time()
        if earliest is None or earliest > now:
            return Claim(now=now, wait=None if earliest is None else earliest - now)

        def claim(db: sqlite3.Connection) -> Claim:
            now = time.time()
            row = db.execute("SELECT * FROM monitors ORDER BY next_run_at LIMIT 1").fetchone()
            if row is None:
                return Claim(now=now)
            monitor = _monitor(row)
            if monitor.next_run_at > now:
                return Claim(now=now, wait=monitor.next_run_at - now)
            following = monitor.following_slot(now)
            db.execute("UPDATE monitors SET next_run_at = ? WHERE id = ?", (following, monitor.id))
            return Claim(replace(monitor, next_run_at=following), scheduled_at=monitor.next_run_at, now=now)

        return await self.file.transaction(claim)

    async def record_run(self, monitor_id: str, run: dict[str, Any], *, baseline: str | None,
                         changed: bool) -> Monitor | None:  # fmt: skip
        text = json.dumps(run)

        def record(db: sqlite3.Connection) -> Monitor | None:
            if db.execute("SELECT 1 FROM monitors WHERE id = ?", (monitor_id,)).fetchone() is None:
                return None
            db.execute("INSERT INTO monitor_runs (monitor_id, run) VALUES (?, ?)", (monitor_id, text))
            db.execute(
                "DELETE FROM monitor_runs WHERE monitor_id = ? AND seq NOT IN"
                " (SELECT seq FROM monitor_runs WHERE monitor_id = ? ORDER BY seq DESC LIMIT ?)",
                (monitor_id, monitor_id, MAX_RUNS_KEPT),
            )
            db.execute(
                "UPDATE monitors SET last_run = ?,"
                " last_change = CASE WHEN ? THEN ? ELSE last_change END,"
                " baseline = COALESCE(?, baseline) WHERE id = ?",
                (text, int(changed), text, baseline, monitor_id),
            )
            return _monitor(db.execute("SELECT * FROM monitors WHERE id = ?", (monitor_id,)).fetchone())

        return await self.file.transaction(record)

    async def count(self) -> int:
        return int(await self.file.run(lambda db: db.execute("SELECT COUNT(*) FROM monitors").fetchone()[0]))

    async def close(self) -> None:
        await self.file.close()


def _monitor(row: sqlite3.Row) -> Monitor:
    return Monitor.from_record(row["record"], next_run_at=float(row["next_run_at"]), last_run=row["last_run"],
                               last_change=row["last_change"], baseline=row["baseline"])  # fmt: skip

