"""The names of the Redis state store's keys, on one server or on a Redis Cluster.

Layout (``prefix`` defaults to ``screenshot:``).  A script's keys all come in
KEYS.  On a Redis Cluster the keys of one script share a hash tag, so they live
in one slot: ``{keys}`` for the API keys (adding one checks the record and the
hash index together), each key's own id for its ledger, so busy keys spread over
the primaries.  ``[t]`` below stands for that tag and its colon, ``{keys}:`` or
``{key_id}:``; on a single server it is empty, so the names stay as they were::

    {p}[t]key:{id}             hash   one KeyRecord + key_hash (signing_secret added on first read
                                      to keys stored before signed links)
    {p}[t]keyhash              hash   key_hash -> id (the lookup index)
    {p}[t]keys                 zset   ids by created_at (listing, counting)
    {p}[t]quota:{key_id}:{YYYY-MM}  int  credits used that month (expires 62 days after last use)
    {p}[t]res:{id}             hash   s = reserved | committed | refunded, e = lease end (ms,
                                      Redis time); expires after 40 days
    {p}[t]leases:{key_id}      zset   "{YYYY-MM}:{reservation id}" of the key's reserved credits,
                                      scored by lease end (what reclaim refunds once run out)
    {p}ledger:keys             zset   ids of keys with reservations, by last reserve (reclaim visits them)
    {p}rate:{key_id}           hash   leaky bucket level + time (expires when empty)
    {p}conc:{key_id}           zset   in-flight tokens scored by lease expiry
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Reservation


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

    def quota(self, key_id: str, period: str) -> str:
        return f"{self.prefix}{self._slot(key_id)}quota:{key_id}:{period}"

    def reservation(self, reservation: Reservation) -> str:
        return f"{self.prefix}{self._slot(reservation.key_id)}res:{reservation.id}"

    def leases(self, key_id: str) -> str:
        return f"{self.prefix}{self._slot(key_id)}leases:{key_id}"

    @property
    def ledger_keys(self) -> str:
        return f"{self.prefix}ledger:keys"  # used alone: any slot
