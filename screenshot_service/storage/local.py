"""Local directory storage (the embedded default), served by GET /v1/files/{name}.

Files are written to a temporary name and renamed, so a reader never sees half
a capture; a sweeper deletes files older than ``retention_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..state.sqlite_file import private_dirs
from .base import TYPE_BY_EXTENSION, StoredObject, content_type_of
from .errors import StorageError

log = logging.getLogger("screenshot_service.storage")

# What new_object_name produces; anything else is never a stored file.
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{20,64}}\.({'|'.join(TYPE_BY_EXTENSION)})$")


class LocalStorage:
    def __init__(self, path: str | Path, retention_days: int) -> None:
        self.root = Path(path)
        self.retention = timedelta(days=retention_days)
        private_dirs(self.root)  # 0700: captures are the callers' data, served only through the API

    async def put(self, name: str, data: bytes, content_type: str, *, base_url: str = "") -> StoredObject:
        target = self._path(name)
        if target is None:
            raise StorageError(f"refusing to store an invalid name {name!r}")
        try:
            await asyncio.to_thread(_write_atomically, target, data)
        except OSError as exc:
            raise StorageError(f"could not write the capture: {exc.strerror or exc}") from exc
        return StoredObject(
            name=name,
            url=f"{base_url.rstrip('/')}/v1/files/{name}",
            expires_at=datetime.now(UTC) + self.retention,
            size=len(data),
            content_type=content_type,
        )

    async def get(self, name: str) -> tuple[bytes, str] | None:
        path = self._path(name)
        if path is None:
            return None
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return data, content_type_of(name)

    def sweep(self, now: float | None = None) -> int:
        """Delete captures older than the retention; returns how many went."""
        cutoff = (now if now is not None else time.time()) - self.retention.total_seconds()
        removed = 0
        for entry in os.scandir(self.root):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    async def sweep_forever(self, interval: float = 3600.0) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.sweep)
                if removed:
                    log.info("retention sweep removed %d captures", removed)
            except OSError as exc:
                log.warning("retention sweep failed: %s", exc)
            await asyncio.sleep(interval)

    def _path(self, name: str) -> Path | None:
        return self.root / name if NAME_PATTERN.match(name) else None


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
