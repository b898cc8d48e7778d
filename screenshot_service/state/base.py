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
    signing_secret: str  # verifies this key's signed links (signing.py); shown likewise, never the webhook's


@dataclass(frozen=True)
class Reservation:
    """One reserved credit: a lease that ends committed (delivered) or refunded (README, The ledger)."""

    id: str
    key_id: str
    period: str  # "YYYY-MM", the UTC calendar month the credit belongs to


@dataclass(frozen=True)
class Reserved:
    """What ``reserve_credit`` answers, in one round trip."""

    reservation: Reservation | None  # None: the month's quota is used up
    used: int  # credits used this month, this reservation included


@dataclass(frozen=True)
class ReservedMany:
    """What ``reserve_credits`` answers: every credit asked for, or none."""

    reservations: tuple[Reservation, ...] | None  # None: the quota cannot cover them all
    used: int  # credits used this month, these reservations included


class StateStore(Protocol):
    async def ping(self) -> None:
        """Raise state.errors.StateUnavailable when the store does not answer."""
        ...

    # keys ----------------------------------------------------------------------
    async def add_key(self, record: KeyRecord, key_hash: str) -> None: ...
    async def key_by_hash(self, key_hash: str) -> KeyRecord | None: ...
    async def key_by_id(self, key_id: str) -> KeyRecord | None: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def revoke_key(self, key_id: str) -> bool: ...
    async def count_keys(self) -> int: ...

    # monthly quota -------------------------------------------------------------
    async def reserve_credit(self, key_id: str, period: str, limit: int, lease_seconds: float) -> Reserved:
        """Atomically take one credit if fewer than ``limit`` are used.

        The reservation is a lease: not committed within ``lease_seconds`` (store clock), it can
        no longer be committed, and ``reclaim_credits`` refunds it.
        """
        ...

    async def reserve_credits(
        self, key_id: str, period: str, limit: int, count: int, lease_seconds: float
    ) -> ReservedMany:
        """Atomically take ``count`` credits if ``used + count <= limit``, else none at all
        (a batch: every item is covered, or nothing is queued).  Each is a lease as above."""
        ...

    async def commit_credit(self, reservation: Reservation) -> bool:
        """Mark the credit spent.  True once it is committed (again: idempotent); False if its
        lease ran out or it was refunded: the capture must then not be delivered."""
        ...

    async def refund_credit(self, reservation: Reservation, *, overrule_commit: bool = False) -> bool:
        """Give the credit back if it is reserved; True if this call refunded it.

        ``overrule_commit``: also when committed — for a commit that was sent but never
        acknowledged, whose capture was therefore not delivered.
        """
        ...

    async def reclaim_credits(self) -> int:
        """Refund every reservation whose lease ran out uncommitted (its owner died); how many."""
        ...

    async def credits_used(self, key_id: str, period: str) -> int: ...

    async def close(self) -> None: ...
