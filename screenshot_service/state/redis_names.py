"""The names of the Redis state store's keys, on one server or on a Redis Cluster.

Layout (``prefix`` defaults to ``screenshot:``).  A script's keys all come in
KEYS.  On a Redis Cluster the keys of one script share a hash tag, so they live
in one slot: ``{keys}`` for the API keys (adding one checks the record and the
hash index together); for the quota ledger one of LEDGER_SLOTS tags, chosen by a
hash of the key id, so busy keys spread over the primaries while the reclaim
sweep reads a fixed, small number of lease sets.  ``[t]`` below stands for the
tag and its colon (``{keys}:``, ``{ledger:N}:``); on a single server it is
empty, so the names the data already has stay as they were::

    {p}[t]key:{id}             hash   one KeyRecord + key_hash (signing_secret added on first read
                                      to keys stored before signed links)
    {p}[t]keyhash              hash   key_hash -> id (the lookup index)
    {p}[t]keys                 zset   ids by created_at (listing, counting)
    {p}[t]quota:{key_id}:{YYYY-MM}  int  credits used that month (expires 62 days after last use)
    {p}[t]res:{id}             hash   s = reserved | committed | refunded, e = lease end (ms,
                                      Redis time); expires after 40 days
    {p}[t]leases:{N}           zset   "{YYYY-MM}:{key_id}:{reservation id}" of reserved credits,
                                      scored by lease end (what reclaim refunds once run out)
    {p}rate:{key_id}           hash   leaky bucket level + time (expires when empty)
    {p}conc:{key_id}           zset   in-flight tokens scored by lease expiry
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .base import Reservation

LEDGER_SLOTS = 64  # lease sets, and cluster slots for the ledger; the sweep reads each one


@dataclass(frozen=True)
class RedisNames:
    prefix: str
    cluster: bool

    def _slot(self, tag: str) -> str:
        # Only on a cluster: a single server keeps the names it always had, and its data.
        return f"{{{tag}}}:" if self.cluster else ""

    def key(self, key_id: str) -> str:
        return f"{self.prefix}{self._slot('keys')}key:{key_id}"

    @property
    def key_index(self) -> str:
        return f"{self.prefix}{self._slot('keys')}keyhash"

    @property
    def key_ids(self) -> str:
        return f"{self.prefix}{self._slot('keys')}keys"

    def ledger_slot(self, key_id: str) -> int:
        return zlib.crc32(key_id.encode()) % LEDGER_SLOTS

    def _ledger(self, key_id: str) -> str:
        return self._slot(f"ledger:{self.ledger_slot(key_id)}")

    def quota(self, key_id: str, period: str) -> str:
        return f"{self.prefix}{self._ledger(key_id)}quota:{key_id}:{period}"

    def reservation(self, reservation: Reservation) -> str:
        return f"{self.prefix}{self._ledger(reservation.key_id)}res:{reservation.id}"

    def leases(self, slot: int) -> str:
        return f"{self.prefix}{self._slot(f'ledger:{slot}')}leases:{slot}"

    def leases_of(self, key_id: str) -> str:
        return self.leases(self.ledger_slot(key_id))


def lease_member(reservation: Reservation) -> str:
    """A reservation in its lease set: its month and key too, so reclaim can name its keys."""
    return f"{reservation.period}:{reservation.key_id}:{reservation.id}"


def reservation_of(member: str) -> Reservation:
    period, rest = member.split(":", 1)
    key_id, reservation_id = rest.rsplit(":", 1)  # the id is hex: a key id may hold colons
    return Reservation(id=reservation_id, key_id=key_id, period=period)
