"""The state store behind keys, quota and jobs: one Protocol, two backends.

SQLite (embedded, one process) and Redis (shared by several instances) both
implement ``StateStore``; everything above this package talks only to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class KeyRecord:
    id: str  # public identifier, safe to log ("key_…")
    name: str
    plan: str
    created_at: datetime
    revoked: bool
    webhook_secret: str  # signs this key's webhooks; shown at creation and by `keys list`


@dataclass(frozen=True)
class Reservation:
    """One reserved credit. Committed on success or refunded on failure, exactly once."""

    id: str
    key_id: str
    period: str  # "YYYY-MM", the UTC calendar month the credit belongs to


class StateStore(Protocol):
    async def ping(self) -> None:
        """Raise errors.StateUnavailable when the store does not answer."""
        ...

    # keys ----------------------------------------------------------------------
    async def add_key(self, record: KeyRecord, key_hash: str) -> None: ...
    async def key_by_hash(self, key_hash: str) -> KeyRecord | None: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def revoke_key(self, key_id: str) -> bool: ...
    async def count_keys(self) -> int: ...

    # monthly quota -------------------------------------------------------------
    async def reserve_credit(self, key_id: str, period: str, limit: int) -> Reservation | None:
        """Atomically take one credit if fewer than ``limit`` are used; None when exhausted."""
        ...

    async def commit_credit(self, reservation: Reservation) -> None: ...

    async def refund_credit(self, reservation: Reservation) -> bool:
        """Give the credit back unless already committed or refunded; True if it was refunded."""
        ...

    async def credits_used(self, key_id: str, period: str) -> int: ...

    async def close(self) -> None: ...
