"""Resolve a host once, check every address against the egress policy, connect to a checked one.

The same steps for a target (proxy.py) and for an upstream proxy (chain.py): a literal address
is connected to, so no second name lookup can sneak a different answer in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

from .http1 import HEAD_LIMIT
from .policy import Address, EgressPolicy, unwrap
from .relay import Reader, Writer
from .resolver import Resolver, first_blocked, resolve_host


class Blocked(Exception):
    """The egress policy refuses one of the host's addresses (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def resolve_checked(
    policy: EgressPolicy, resolver: Resolver, host: str, port: int, own_ports: Collection[int]
) -> list[Address]:
    """Every address of ``host``; ``TargetUnreachable`` without one, ``Blocked`` when one is refused."""
    addresses = await resolve_host(resolver, host, port)
    reason = blocked_reason(policy, addresses, port, own_ports)
    if reason is not None:
        raise Blocked(reason)
    return addresses


async def connect_any(addresses: list[Address], port: int, timeout: float) -> tuple[Reader, Writer] | None:
    """A connection to the first of ``addresses`` that answers, all tries within ``timeout``; None if none did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for ip in addresses:
        with contextlib.suppress(OSError, TimeoutError):
            return await asyncio.wait_for(
                asyncio.open_connection(str(ip), port, limit=HEAD_LIMIT), deadline - loop.time())
    return None


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
