"""The Redis connection every Redis-backed part shares: one server or a Redis Cluster.

A dead Redis must fail fast, not hang requests: short socket timeouts, no
retries, a bounded pool, and every error becomes ``StateUnavailable`` (503).
The pool checks a connection before handing it out and reconnects, so the same
objects work again as soon as Redis is back.

On a cluster (``state.redis.cluster = true``) the client learns the slot map
from the node in the URL and sends each command to the primary that owns its
keys.  Every script therefore names all its keys in KEYS, and the keys of one
script share a hash tag (``{...}``), so they live in one slot; on a single
server the tags are plain characters of the name.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from .errors import StateUnavailable

T = TypeVar("T")

RedisClient = aioredis.Redis | RedisCluster

CONNECT_TIMEOUT = 2.0  # seconds to open a connection
SOCKET_TIMEOUT = 2.0  # seconds for one command's answer
POOL_SIZE = 64  # connections per instance (per node on a cluster); more callers wait for one...
POOL_WAIT = 2.0  # ...at most this long, then 503 (a cluster's pool answers 503 at once instead)

# OSError covers TimeoutError and refused sockets; RedisClusterException a cluster with no
# reachable node or an incomplete slot map.
_REDIS_ERRORS = (RedisError, RedisClusterException, OSError)


def unavailable(exc: BaseException) -> StateUnavailable:
    # The class name only: redis-py messages carry host:port, and never the URL.
    return StateUnavailable(f"state store (Redis) unavailable: {type(exc).__name__}", retry_after=1)


async def guarded(awaitable: Awaitable[T]) -> T:
    """Await one Redis operation; any Redis or socket failure becomes StateUnavailable."""
    try:
        return await awaitable
    except _REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def connect(url: str, *, cluster: bool = False) -> RedisClient:
    """A client on its own bounded pool; no connection is made until first use."""
    if cluster:
        return RedisCluster.from_url(
            url,
            max_connections=POOL_SIZE,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            # No retries: a primary that fails over answers 503 until the replica took over.
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            protocol=2,  # as below
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        # RESP2: under RESP3, redis-py 8 turns on "maintenance notifications" and
        # then skips its check of pooled connections, so after a Redis restart
        # every stale idle connection would fail one call.
        protocol=2,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool
