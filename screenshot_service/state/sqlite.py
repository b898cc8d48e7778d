"""Embedded state store on SQLite (keys and quota).

Quota reserve/refund are conditional statements inside one IMMEDIATE
transaction each, so they are atomic without extra locking.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..signing import new_signing_secret
from .base import KeyRecord, Reservation, Reserved, ReservedMany
from .sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    webhook_secret TEXT NOT NULL,
    signing_secret TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS quota_usage (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period)
);
-- one row per reserved credit: reserved -> committed | refunded (README, The ledger)
CREATE TABLE IF NOT EXISTS quota_reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL DEFAULT 0  -- unix time the lease runs out
);
"""
# Files made before reservations were leases: their rows get lease 0 (long settled anyway).
# Files made before signed links: their keys get a signing secret at start-up (_sign_old_keys).
MIGRATIONS = ("ALTER TABLE quota_reservations ADD COLUMN expires_at REAL NOT NULL DEFAULT 0",
              "ALTER TABLE api_keys ADD COLUMN signing_secret TEXT NOT NULL DEFAULT ''")
RESERVED_INDEX = ("CREATE INDEX IF NOT EXISTS quota_reservations_leases ON quota_reservations (expires_at)"
                  " WHERE state = 'reserved'")


class SqliteStateStore:
    def __init__(self, path: str | Path) -> None:
        self.file = SqliteFile(path, SCHEMA, migrations=MIGRATIONS)
        self.file.db.execute(RESERVED_INDEX)
        _sign_old_keys(self.file.db)
        self.path = self.file.path
        self._run = self.file.run

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    # keys ------------------------------------------------------------------------
    async def add_key(self, record: KeyRecord, key_hash: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO api_keys (id, key_hash, name, plan, created_at, revoked, webhook_secret, signing_secret)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, key_hash, record.name, record.plan, record.created_at.isoformat(),
                 int(record.revoked), record.webhook_secret, record.signing_secret),
            )
        )

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        )
        if row is None or not secrets.compare_digest(row["key_hash"], key_hash):
            return None
        return _key_record(row)

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await self._run(lambda db: db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())
        return None if row is None else _key_record(row)

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._run(lambda db: db.execute("SELECT * FROM api_keys ORDER BY created_at").fetchall())
        return [_key_record(row) for row in rows]

    async def revoke_key(self, key_id: str) -> bool:
        cursor = await self._run(lambda db: db.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?", (key_id,)))
        return cursor.rowcount > 0

    async def count_keys(self) -> int:
        row = await self._run(lambda db: db.execute("SELECT COUNT(*) FROM api_keys").fetchone())
        return int(row[0])

    # quota ------------------------------------------------------------------------
    async def reserve_credit(self, key_id: str, period: str, limit: int, lease_seconds: float) -> Reserved:
        reservation = Reservation(id=secrets.token_hex(12), key_id=key_id, period=period)

        def reserve(db: sqlite3.Connection) -> Reserved:
            db.execute("INSERT OR IGNORE INTO quota_usage (key_id, period, used) VALUES (?, ?, 0)",
                       (key_id, period))
            taken = db.execute(
                "UPDATE quota_usage SET used = used + 1 WHERE key_id = ? AND period = ? AND used < ?",
                (key_id, period, limit),
            ).rowcount
            if taken:
                db.execute(
                    "INSERT INTO quota_reservations (id, key_id, period, state, created_at, expires_at)"
                    " VALUES (?, ?, ?, 'reserved', ?, ?)",
                    (reservation.id, key_id, period, _now(), time.time() + lease_seconds),
                )
            used = db.execute("SELECT used FROM quota_usage WHERE key_id = ? AND period = ?",
                              (key_id, period)).fetchone()[0]
            return Reserved(reservation if taken else None, int(used))

        return await self.file.transaction(reserve)

    async def reserve_credits(
        self, key_id: str, period: str, limit: int, count: int, lease_seconds: float
    ) -> ReservedMany:
        reservations = tuple(Reservation(id=secrets.token_hex(12), key_id=key_id, period=period) for _ in range(count))

        def reserve(db: sqlite3.Connection) -> ReservedMany:
            db.execute("INSERT OR IGNORE INTO quota_usage (key_id, period, used) VALUES (?, ?, 0)",
                       (key_id, period))
            taken = db.execute(
                "UPDATE quota_usage SET used = used + ? WHERE key_id = ? AND period = ? AND used + ? <= ?",
                (count, key_id, period, count, limit),
            ).rowcount
            if taken:
                created, expires = _now(), time.time() + lease_seconds
                db.executemany(
                    "INSERT INTO quota_reservations (id, key_id, period, state, created_at, expires_at)"
                    " VALUES (?, ?, ?, 'reserved', ?, ?)",
                    [(r.id, key_id, period, created, expires) for r in reservations],
                )
            used = db.execute("SELECT used FROM quota_usage WHERE key_id = ? AND period = ?",
                              (key_id, period)).fetchone()[0]
            return ReservedMany(reservations if taken else None, int(used))

        return await self.file.transaction(reserve)

    async def commit_credit(self, reservation: Reservation) -> bool:
        # The clock is read inside the transaction: a commit that waited on the file past the
        # lease (its caller gave up and refunds) must not land late.
        def commit(db: sqlite3.Connection) -> bool:
            db.execute(
                "UPDATE quota_reservations SET state = 'committed'"
                " WHERE id = ? AND state = 'reserved' AND expires_at >= ?",
                (reservation.id, time.time()),
            )
            row = db.execute("SELECT state FROM quota_reservations WHERE id = ?", (reservation.id,)).fetchone()
            return row is not None and row[0] == "committed"

        return await self.file.transaction(commit)

    async def refund_credit(self, reservation: Reservation, *, overrule_commit: bool = False) -> bool:
        states = "('reserved', 'committed')" if overrule_commit else "('reserved')"

        def refund(db: sqlite3.Connection) -> bool:
            moved = db.execute(
                f"UPDATE quota_reservations SET state = 'refunded' WHERE id = ? AND state IN {states}",
                (reservation.id,),
            ).rowcount
            if moved:
                _give_back(db, reservation.key_id, reservation.period)
            return bool(moved)

        return await self.file.transaction(refund)

    async def reclaim_credits(self) -> int:
        def reclaim(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT id, key_id, period FROM quota_reservations WHERE state = 'reserved' AND expires_at < ?",
                (time.time(),),
            ).fetchall()
            for row in rows:
                db.execute("UPDATE quota_reservations SET state = 'refunded' WHERE id = ?", (row["id"],))
                _give_back(db, row["key_id"], row["period"])
            return len(rows)

        return await self.file.transaction(reclaim)

    async def credits_used(self, key_id: str, period: str) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT used FROM quota_usage WHERE key_id = ? AND period = ?", (key_id, period)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self.file.close()


def _sign_old_keys(db: sqlite3.Connection) -> None:
    """Give every key stored before signed links its own signing secret, once.  The condition
    keeps a secret another process gave first (two instances starting on one file)."""
    for row in db.execute("SELECT id FROM api_keys WHERE signing_secret = ''").fetchall():
        db.execute("UPDATE api_keys SET signing_secret = ? WHERE id = ? AND signing_secret = ''",
                   (new_signing_secret(), row["id"]))


def _give_back(db: sqlite3.Connection, key_id: str, period: str) -> None:
    db.execute("UPDATE quota_usage SET used = MAX(used - 1, 0) WHERE key_id = ? AND period = ?", (key_id, period))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _key_record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        plan=row["plan"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked=bool(row["revoked"]),
        webhook_secret=row["webhook_secret"],
        signing_secret=row["signing_secret"],
    )
