"""Per-key request rate: the embedded limiter (aiolimiter) and the shared interface.

A plan's ``requests_per_second`` and ``burst`` make a leaky bucket holding
``burst`` requests that drains at the rate.  Over it, the answer is 429 at once:
we check ``has_capacity()`` before ``acquire()``, so no request ever queues.
The Redis backend implements the same interface with one Lua script, so every
instance behind a load balancer sees one limit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from aiolimiter import AsyncLimiter

from ..config import PlanConfig


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # requests the bucket holds (the burst)
    remaining: int  # requests that would be allowed right now
    reset_after: float  # seconds until the bucket is empty again
    retry_after: float  # seconds until one more request fits (0 when allowed)
    window: float  # seconds the bucket takes to drain completely (burst / rate)


class RateLimiter(Protocol):
    async def hit(self, key_id: str, plan: PlanConfig) -> RateDecision:
        """Count one request for ``key_id`` if it fits; say what is left either way."""
        ...


class LocalRateLimiter:
    """aiolimiter buckets per key, in a bounded LRU registry.

    The registry is created lazily by the first request, inside the running
    loop (AsyncLimiter binds to it), and forgets the least recently seen keys
    beyond ``max_keys`` so a flood of distinct keys cannot grow memory.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, float, int], AsyncLimiter] = OrderedDict()

    def _bucket(self, key_id: str, plan: PlanConfig) -> AsyncLimiter:
        # A plan change makes a new bucket (part of the registry key).
        slot = (key_id, plan.requests_per_second, plan.burst)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = AsyncLimiter(plan.burst, plan.burst / plan.requests_per_second)
            self._buckets[slot] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(slot)
        return bucket

    async def hit(self, key_id: str, plan: PlanConfig) -> RateDecision:
        bucket = self._bucket(key_id, plan)
        allowed = bucket.has_capacity()
        if allowed:
            await bucket.acquire()  # returns at once: capacity was just checked
        # has_capacity() has leaked the bucket up to now, so _level is current.
        level = bucket._level
        rate = bucket._rate_per_sec
        retry_after = 0.0 if allowed else max(0.0, (level + 1 - bucket.max_rate) / rate)
        return RateDecision(
            allowed=allowed,
            limit=plan.burst,
            remaining=max(0, math.floor(bucket.max_rate - level)),
            reset_after=level / rate,
            retry_after=retry_after,
            window=plan.burst / plan.requests_per_second,
        )
