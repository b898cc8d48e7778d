"""Per-key concurrency cap: how many captures one key may have in flight."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from typing import Protocol


class ConcurrencyGate(Protocol):
    async def acquire(self, key_id: str, limit: int) -> str | None:
        """A token for one in-flight capture, or None when ``limit`` are already running."""
        ...

    async def release(self, key_id: str, token: str, hold_seconds: float = 0.0) -> None:
        """Give the slot back, at once or ``hold_seconds`` from now (a timeout's penalty)."""
        ...


class LocalConcurrencyGate:
    """In-process counters: exact for one instance (the embedded backend)."""

    def __init__(self) -> None:
        self._running: defaultdict[str, set[str]] = defaultdict(set)

    async def acquire(self, key_id: str, limit: int) -> str | None:
        running = self._running[key_id]
        if len(running) >= limit:
            return None
        token = secrets.token_hex(8)
        running.add(token)
        return token

    async def release(self, key_id: str, token: str, hold_seconds: float = 0.0) -> None:
        if hold_seconds > 0:
            asyncio.get_running_loop().call_later(hold_seconds, self._drop, key_id, token)
        else:
            self._drop(key_id, token)

    def _drop(self, key_id: str, token: str) -> None:
        running = self._running.get(key_id)
        if running is not None:
            running.discard(token)
            if not running:
                del self._running[key_id]
