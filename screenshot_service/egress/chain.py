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
import contextlib
from collections.abc import Collection
from dataclasses import dataclass

from .errors import TargetUnreachable
from .http1 import HEAD_LIMIT
from .policy import Address, EgressPolicy, unwrap
from .relay import Reader, Writer
from .resolver import Resolver, first_blocked, resolve_host
from .upstream import Upstream

# What went wrong with the upstream (ProxyFailure.kind).
UNREACHABLE, REFUSED, AUTH_FAILED, BLOCKED = "unreachable", "refused", "authentication failed", "blocked"


@dataclass(frozen=True)
class ProxyFailure:
    kind: str
    proxy: str  # host:port, never the credentials
    target: str  # the host the request was for
    status: int | None = None  # the upstream's answer, when it answered
    reason: str = ""

    @property
    def message(self) -> str:
        """What the caller is told: which failure, never the credentials (nor, for an operator's
        pool, where its proxies are: the log has ``proxy``)."""
        if self.kind == BLOCKED:
            return f"the upstream proxy is not allowed by the egress policy: {self.reason}"
        if self.kind == UNREACHABLE:
            return f"the upstream proxy could not be reached ({self.reason})"
        if self.kind == AUTH_FAILED:
            return "the upstream proxy refused the credentials (HTTP 407: authentication failed)"
        answer = f"HTTP {self.status}" if self.status is not None else self.reason
        return f"the upstream proxy refused the connection to {self.target} ({answer})"


class ProxyFailed(Exception):
    def __init__(self, failure: ProxyFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure_for(status: int, upstream: Upstream, target: str) -> ProxyFailure:
    kind = AUTH_FAILED if status == 407 else REFUSED
    return ProxyFailure(kind, upstream.address, target, status)


async def connect(
    policy: EgressPolicy, resolver: Resolver, upstream: Upstream, target: str, *,
    own_ports: Collection[int], timeout: float,
) -> tuple[Reader, Writer]:
    """A connection to ``upstream`` (its address checked like any target's), or ProxyFailed."""
    def failed(kind: str, reason: str) -> ProxyFailed:
        return ProxyFailed(ProxyFailure(kind, upstream.address, target, reason=reason))

    try:
        addresses = await resolve_host(resolver, upstream.host, upstream.port)
    except TargetUnreachable:
        raise failed(UNREACHABLE, f"could not resolve {upstream.host}") from None
    reason = blocked_reason(policy, addresses, upstream.port, own_ports)
    if reason is not None:
        raise failed(BLOCKED, reason)
    deadline = asyncio.get_running_loop().time() + timeout
    for ip in addresses:
        remaining = deadline - asyncio.get_running_loop().time()
        with contextlib.suppress(OSError, TimeoutError):
            return await asyncio.wait_for(asyncio.open_connection(str(ip), upstream.port, limit=HEAD_LIMIT), remaining)
    raise failed(UNREACHABLE, "connection failed")


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
        raise ProxyFailed(ProxyFailure(REFUSED, upstream.address, host, reason="no answer to CONNECT")) from None
    status = status_of(head)
    if status is None:
        raise ProxyFailed(ProxyFailure(REFUSED, upstream.address, host, reason="no valid answer to CONNECT"))
    if not 200 <= status < 300:
        raise ProxyFailed(failure_for(status, upstream, host))


def status_of(head: bytes) -> int | None:
    version, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        return None
    return int(code)


def blocked_reason(policy: EgressPolicy, addresses: list[Address], port: int, own_ports: Collection[int]) -> str | None:
    """Why the egress policy refuses ``addresses`` at ``port`` (a target's or an upstream's), or None;
    the egress proxy's own ports are never a way back in, whatever ``egress.allow`` says."""
    reason = first_blocked(policy, addresses, port)
    if reason is None and port in own_ports and any(_is_local(ip) for ip in addresses):
        reason = "the egress proxy itself"
    return reason


def _is_local(ip: Address) -> bool:
    address = unwrap(ip)
    return address.is_loopback or address.is_unspecified
