"""Chaining a capture's requests to its upstream proxy, once the egress check let the target through.

The egress proxy checks the target exactly as without an upstream (resolve, refuse non-public
addresses and block-listed hosts) and only then opens a connection here: to the upstream, whose
own address obeys the same policy.  The upstream gets the target's *name*, so that a geo proxy
resolves it in its own network: what that resolution returns is out of the service's sight
(README, Upstream proxies).  A failure of the upstream itself is a ``ProxyFailure``, recorded on
the capture's channel, so the capture ends 502 ``proxy_error`` rather than ``target_unreachable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from . import dial
from .errors import TargetUnreachable
from .policy import EgressPolicy
from .relay import Reader, Writer
from .resolver import Resolver
from .upstream import Upstream, pool_member_at

# What went wrong with the upstream (ProxyFailure.kind).
UNREACHABLE, REFUSED, AUTH_FAILED, BLOCKED = "unreachable", "refused", "authentication failed", "blocked"
# Why a caller's own proxy is refused when it is one of the operator's pool members (README, Upstream proxies).
OPERATORS_PROXY = "it is one of the operator's pool proxies, which only proxy_pool reaches"


@dataclass(frozen=True)
class ProxyFailure:
    kind: str
    proxy: str  # host:port, never the credentials
    target: str  # the host the request was for
    status: int | None = None  # the upstream's answer, when it answered
    reason: str = ""
    pool: str | None = None  # the operator's pool the proxy is from; None: the caller's own

    @property
    def message(self) -> str:
        """What the caller is told: which failure, never the credentials; of an operator's pool,
        its name but never where its proxies are nor why (the log has ``proxy``): the caller
        chose neither."""
        who = "the upstream proxy" if self.pool is None else f"the proxy pool {self.pool!r}"
        if self.kind == BLOCKED:
            why = f": {self.reason}" if self.pool is None else ""
            return f"{who} is not allowed by the egress policy{why}"
        if self.kind == UNREACHABLE:
            why = f" ({self.reason})" if self.pool is None else ""
            return f"{who} could not be reached{why}"
        if self.kind == AUTH_FAILED:
            return f"{who} refused the credentials (HTTP 407: authentication failed)"
        answer = f"HTTP {self.status}" if self.status is not None else self.reason
        return f"{who} refused the connection to {self.target} ({answer})"


class ProxyFailed(Exception):
    def __init__(self, failure: ProxyFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure_for(status: int, upstream: Upstream, target: str) -> ProxyFailure:
    return _failure(AUTH_FAILED if status == 407 else REFUSED, upstream, target, status=status)


def _failure(kind: str, upstream: Upstream, target: str, *, status: int | None = None, reason: str = "") -> ProxyFailure:
    return ProxyFailure(kind, upstream.address, target, status, reason, upstream.pool)


async def connect(
    policy: EgressPolicy, resolver: Resolver, upstream: Upstream, target: str, *,
    own_ports: Collection[int], timeout: float,
) -> tuple[Reader, Writer]:
    """A connection to ``upstream`` (its address checked like any target's), or ProxyFailed."""
    def failed(kind: str, reason: str) -> ProxyFailed:
        return ProxyFailed(_failure(kind, upstream, target, reason=reason))

    try:
        addresses = await dial.resolve_checked(policy, resolver, upstream.host, upstream.port, own_ports)
    except TargetUnreachable:
        raise failed(UNREACHABLE, f"could not resolve {upstream.host}") from None
    except dial.Blocked as blocked:
        raise failed(BLOCKED, blocked.reason) from None
    if await pool_member_at(resolver, addresses, upstream) is not None:
        raise failed(BLOCKED, OPERATORS_PROXY)
    connection = await dial.connect_any(addresses, upstream.port, timeout)
    if connection is None:
        raise failed(UNREACHABLE, "connection failed")
    return connection


async def open_tunnel(reader: Reader, writer: Writer, upstream: Upstream, host: str, port: int, timeout: float) -> None:
    """``CONNECT host:port`` on a fresh connection to the upstream; returns once it answered 2xx."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if upstream.authorization is not None:
        lines.append(f"Proxy-Authorization: {upstream.authorization}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise ProxyFailed(_failure(REFUSED, upstream, host, reason="no answer to CONNECT")) from None
    status = status_of(head)
    if status is None:
        raise ProxyFailed(_failure(REFUSED, upstream, host, reason="no valid answer to CONNECT"))
    if not 200 <= status < 300:
        raise ProxyFailed(failure_for(status, upstream, host))


def status_of(head: bytes) -> int | None:
    version, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        return None
    return int(code)
