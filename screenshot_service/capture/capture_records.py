"""The durable record of each capture, per key, that ``compare_to`` finds its baseline in.

A record says where a capture's image is and what it is (object name, format, size, time),
and whether it may be a ``previous`` baseline.  Beside the records, an index maps a key's
baseline fingerprint (a SHA-256 of the key, the URL and the image-changing options:
CaptureOptions.baseline_fingerprint, so no URL or option is stored readable) to its last
capture that may be a baseline.  Both live as long as the stored image (its retention) and
are read only with the key that made them: another key's id is simply not found.

Redis keys, on one server or a cluster alike (``{p}`` the prefix).  No hash tag: every command
touches one key, so a busy API key's records spread over a cluster's primaries instead of
all sitting on one::

    {p}captures:KEY_ID:rec:CAPTURE_ID   string  the record's JSON, expiring with the image
    {p}captures:KEY_ID:prev:FINGERPRINT  string  the id of the last baseline, same expiry

Expiry is set relative (``PX``), which every Redis version takes (``PXAT`` needs 6.2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..state.redis_client import guarded
from ..state.sqlite_file import SqliteFile


@dataclass(frozen=True)
class CaptureRecord:
    id: str
    account: str  # the key id that made it
    object_name: str  # in our storage; "" when it went to the caller's own bucket only
    format: str
    width: int
    height: int
    captured_at: datetime
    expires_at: datetime  # the stored image's retention
    baseline: bool  # may be a `previous` baseline (a good image held by the service)

    def to_json(self) -> str:
        return json.dumps({
            "id": self.id, "account": self.account, "object_name": self.object_name, "format": self.format,
            "width": self.width, "height": self.height, "captured_at": self.captured_at.isoformat(),
            "expires_at": self.expires_at.isoformat(), "baseline": self.baseline,
        })

    @classmethod
    def from_json(cls, text: str) -> CaptureRecord:
        raw: dict[str, Any] = json.loads(text)
        return cls(id=raw["id"], account=raw["account"], object_name=raw["object_name"], format=raw["format"],
                   width=raw["width"], height=raw["height"],
                   captured_at=datetime.fromisoformat(raw["captured_at"]),
                   expires_at=datetime.fromisoformat(raw["expires_at"]), baseline=raw["baseline"])


class CaptureRecords(Protocol):
    async def put(self, record: CaptureRecord, fingerprint: str | None) -> None:
        """Store ``record``; with ``fingerprint``, it becomes that fingerprint's `previous` baseline."""

    async def get(self, account: str, capture_id: str) -> CaptureRecord | None: ...
    async def previous(self, account: str, fingerprint: str) -> CaptureRecord | None: ...
    async def close(self) -> None: ...


RECORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_records (id TEXT PRIMARY KEY, account TEXT NOT NULL,
    record TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS capture_baselines (account TEXT NOT NULL, fingerprint TEXT NOT NULL,
    capture_id TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (account, fingerprint));
CREATE INDEX IF NOT EXISTS capture_records_expiry ON capture_records (expires);
CREATE INDEX IF NOT EXISTS capture_baselines_expiry ON capture_baselines (expires);
"""


class SqliteCaptureRecords:
    def __init__(self, path: str | Path) -> None:
        self.file = SqliteFile(path, RECORDS_SCHEMA)

    async def put(self, record: CaptureRecord, fingerprint: str | None) -> None:
        now, expires = datetime.now(UTC).timestamp(), record.expires_at.timestamp()

        def write(db: Any) -> None:
            # Keeps the tables to the retention (a row a capture): indexed, so cheap at every write.
            db.execute("DELETE FROM capture_records WHERE expires <= ?", (now,))
            db.execute("DELETE FROM capture_baselines WHERE expires <= ?", (now,))
            db.execute("INSERT OR REPLACE INTO capture_records (id, account, record, expires) VALUES (?, ?, ?, ?)",
                       (record.id, record.account, record.to_json(), expires))
            if fingerprint is not None:
                db.execute("INSERT OR REPLACE INTO capture_baselines (account, fingerprint, capture_id, expires) "
                           "VALUES (?, ?, ?, ?)", (record.account, fingerprint, record.id, expires))

        await self.file.transaction(write)

    async def get(self, account: str, capture_id: str) -> CaptureRecord | None:
        rows = await self.file.run(lambda db: db.execute(
            "SELECT record FROM capture_records WHERE id = ? AND account = ? AND expires > ?",
            (capture_id, account, datetime.now(UTC).timestamp())).fetchall())
        return CaptureRecord.from_json(rows[0][0]) if rows else None

    async def previous(self, account: str, fingerprint: str) -> CaptureRecord | None:
        rows = await self.file.run(lambda db: db.execute(
            "SELECT r.record FROM capture_baselines b JOIN capture_records r ON r.id = b.capture_id "
            "WHERE b.account = ? AND b.fingerprint = ? AND r.account = b.account AND r.expires > ?",
            (account, fingerprint, datetime.now(UTC).timestamp())).fetchall())
        return CaptureRecord.from_json(rows[0][0]) if rows else None

    async def close(self) -> None:
        await self.file.close()


class RedisCaptureRecords:
    """Plain keys that Redis expires with the image; the client belongs to the state store."""

    def __init__(self, client: Any, prefix: str = "screenshot:") -> None:
        self.client = client
        self.prefix = prefix

    def _name(self, account: str, kind: str, name: str) -> str:
        return f"{self.prefix}captures:{account}:{kind}:{name}"

    async def put(self, record: CaptureRecord, fingerprint: str | None) -> None:
        lives_ms = max(1, int((record.expires_at - datetime.now(UTC)).total_seconds() * 1000))
        await guarded(self.client.set(self._name(record.account, "rec", record.id), record.to_json(), px=lives_ms))
        if fingerprint is not None:  # after the record, so the index never names a missing one
            await guarded(self.client.set(self._name(record.account, "prev", fingerprint), record.id, px=lives_ms))

    async def get(self, account: str, capture_id: str) -> CaptureRecord | None:
        raw = await guarded(self.client.get(self._name(account, "rec", capture_id)))
        return CaptureRecord.from_json(raw) if raw else None

    async def previous(self, account: str, fingerprint: str) -> CaptureRecord | None:
        capture_id = await guarded(self.client.get(self._name(account, "prev", fingerprint)))
        return await self.get(account, capture_id) if capture_id else None

    async def close(self) -> None:
        """The client belongs to the state store, which closes it."""
