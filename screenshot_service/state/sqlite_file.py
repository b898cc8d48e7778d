"""One SQLite file shared by the embedded stores (state, jobs, cache).

Each store opens its own connection in WAL mode; calls are short and run in a
worker thread under the connection's lock, so the event loop never blocks on
disk.  Errors become 503 ``state_unavailable`` naming what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import StateUnavailable

T = TypeVar("T")
log = logging.getLogger("screenshot_service.state")


class SqliteFile:
    def __init__(
        self, path: str | Path, schema: str = "", *, what: str = "state store", migrations: tuple[str, ...] = ()
    ) -> None:
        self.path = str(path)
        self.what = what  # named in error messages
        if self.path != ":memory:":
            _private_file(Path(self.path))
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if schema:
                self.db.executescript(schema)
            for statement in migrations:  # ALTERs for files made by an older version
                try:
                    self.db.execute(statement)
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self.lock:
                return fn(self.db)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.what} error: {exc.__class__.__name__}") from exc

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` inside BEGIN IMMEDIATE … COMMIT: atomic against every other connection."""

        def wrapped(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                value = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return value

        return await self.run(wrapped)

    async def close(self) -> None:
        await self.run(lambda db: db.close())


def private_dirs(path: Path) -> None:
    """``path`` and any missing parents created 0700 whatever the umask (existing ones untouched)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode passes through the umask


def _private_file(path: Path) -> None:
    """The file holds key hashes, webhook and signing secrets: 0600 from its first byte.  SQLite
    gives its -wal and -shm files the database's mode, so those follow."""
    private_dirs(path.parent)
    # Only a file that does not exist yet is opened here.  Closing a descriptor drops every POSIX
    # lock this process holds on the file, SQLite's included: another process would then take
    # itself for the last connection, checkpoint and delete the WAL under our open connections,
    # and every later commit of ours would be lost.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); set to 0600", path, mode)
        os.chmod(path, 0o600)
