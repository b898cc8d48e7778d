"""The opt-in capture cache: ``cache=true`` reuses an identical earlier capture.

Off by default — every call is a fresh capture unless the caller asks.  An entry
is keyed by the account (key id) and the fingerprint of the options that shape
the image, and lives ``cache_ttl`` seconds, never longer than the stored file's
own URL.  A hit is answered without rendering and without charging a credit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..state.redis_client import guarded
from ..state.sqlite_file import SqliteFile
from ..storage.base import StoredObject
from .diff_options import new_capture_id
from .facts import CaptureWarning, PageFacts


@dataclass(frozen=True)
class CacheEntry:
    stored: StoredObject
    format: str
    width: int
    height: int
    blocked_requests: int
    clamped: bool = False
    page: PageFacts = PageFacts()  # a cached answer says what the original capture said
    warnings: tuple[CaptureWarning, ...] = ()
    pages: int | None = None
    metadata: dict[str, Any] | None = None
    content: dict[str, StoredObject] = field(default_factory=dict)  # extracted beside the image
    # The original capture's identity (entries written before ids existed get a fresh one).
    id: str = field(default_factory=new_capture_id)
    captured_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> str:
        return json.dumps({
            **_stored_json(self.stored), "format": self.format,
            "width": self.width, "height": self.height, "blocked_requests": self.blocked_requests,
            "clamped": self.clamped, "page": self.page.to_json(), "warnings": [w.to_json() for w in self.warnings],
            "pages": self.pages, "metadata": self.metadata,
            "content": {kind: _stored_json(s) for kind, s in self.content.items()},
            "id": self.id, "captured_at": self.captured_at.isoformat(),
        })

    @classmethod
    def from_json(cls, text: str) -> CacheEntry:
        raw: dict[str, Any] = json.loads(text)
        stored = _stored(raw)
        # Entries written before page facts existed read back with empty ones.
        return cls(stored=stored, format=raw["format"], width=raw["width"], height=raw["height"],
                   blocked_requests=raw["blocked_requests"], clamped=raw.get("clamped", False),
                   page=PageFacts.from_json(raw.get("page")),
                   warnings=tuple(CaptureWarning.from_json(w) for w in raw.get("warnings", ())),
                   pages=raw.get("pages"), metadata=raw.get("metadata"),
                   content={kind: _stored(s) for kind, s in (raw.get("content") or {}).items()},
                   **_identity(raw))


def _identity(raw: dict[str, Any]) -> dict[str, Any]:
    if "id" not in raw:
        return {}
    return {"id": raw["id"], "captured_at": datetime.fromisoformat(raw["captured_at"])}


def _stored_json(stored: StoredObject) -> dict[str, Any]:
    return {"name": stored.name, "url": stored.url, "expires_at": stored.expires_at.isoformat(),
            "size": stored.size, "content_type": stored.content_type}


def _stored(raw: dict[str, Any]) -> StoredObject:
    return StoredObject(name=raw["name"], url=raw["url"], expires_at=datetime.fromisoformat(raw["expires_at"]),
                        size=raw["size"], content_type=raw["content_type"])


CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_cache (account TEXT NOT NULL, fingerprint TEXT NOT NULL,
    entry TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (account, fingerprint));
"""


class CaptureCache(Protocol):
    async def get(self, account: str, fingerprint: str) -> CacheEntry | None: ...
    async def put(self, account: str, fingerprint: str, entry: CacheEntry, ttl: float) -> None: ...
    async def close(self) -> None: ...


def usable_ttl(entry: CacheEntry, ttl: float) -> float:
    """Seconds an entry may live: its TTL, but never past its file URL's expiry."""
    return min(ttl, (entry.stored.expires_at - datetime.now(UTC)).total_seconds())


class SqliteCaptureCache:
    def __init__(self, path: str | Path) -> None:
        self.file = SqliteFile(path, CACHE_SCHEMA)

    async def _run(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self.file.run(lambda db: db.execute(sql, args).fetchall())

    async def get(self, account: str, fingerprint: str) -> CacheEntry | None:
        rows = await self._run(
            "SELECT entry FROM capture_cache WHERE account = ? AND fingerprint = ? AND expires > ?",
            (account, fingerprint, datetime.now(UTC).timestamp()),
        )
        return CacheEntry.from_json(rows[0][0]) if rows else None

    async def put(self, account: str, fingerprint: str, entry: CacheEntry, ttl: float) -> None:
        now = datetime.now(UTC).timestamp()
        await self._run("DELETE FROM capture_cache WHERE expires <= ?", (now,))  # keeps the table small
        await self._run(
            "INSERT OR REPLACE INTO capture_cache (account, fingerprint, entry, expires) VALUES (?, ?, ?, ?)",
            (account, fingerprint, entry.to_json(), now + ttl),
        )

    async def close(self) -> None:
        await self.file.close()


class RedisCaptureCache:
    """Entries as plain keys with a TTL: every instance shares them, Redis expires them."""

    def __init__(self, client: Any, prefix: str = "screenshot:cache:") -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, account: str, fingerprint: str) -> CacheEntry | None:
        raw = await guarded(self.client.get(f"{self.prefix}{account}:{fingerprint}"))
        return CacheEntry.from_json(raw if isinstance(raw, str) else raw.decode()) if raw else None

    async def put(self, account: str, fingerprint: str, entry: CacheEntry, ttl: float) -> None:
        await guarded(self.client.set(f"{self.prefix}{account}:{fingerprint}", entry.to_json(),
                                      px=max(1, int(ttl * 1000))))

    async def close(self) -> None:
        """The client belongs to the state store, which closes it."""
