"""Name resolution behind the egress policy, and the one-call URL check built on it.

Resolution is a Protocol so that tests (and the proxy's DNS-rebinding tests)
can pin names to addresses without a network.  ``check_target`` is the
up-front check for a caller-supplied URL (capture url, webhook_url, S3
endpoint); it is not rebinding-proof by itself, which is why the browser and
other outbound clients connect through ``EgressProxy``, which connects to the
very address it checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import Protocol

from screenshot_service.egress.errors import EgressBlocked, TargetUnreachable
from screenshot_service.egress.policy import Address, EgressPolicy, to_address
from screenshot_service.egress.urls import TargetUrl, parse_target_url

# Chromium answers these names itself, without DNS (RFC 6761), so no resolver
# may be asked: whatever DNS says, the browser would connect to loopback.
_LOOPBACK: list[Address] = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[Address]:
        """Every address ``host`` has; raise ``TargetUnreachable`` when it has none."""
        ...


def _dedupe(addresses: Iterable[Address]) -> list[Address]:
    return list(dict.fromkeys(addresses))  # keeps the resolver's preference order


class SystemResolver:
    """The operating system's resolver (``getaddrinfo`` in the loop's thread pool)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    async def resolve(self, host: str, port: int) -> list[Address]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
                self.timeout,
            )
        except (OSError, UnicodeError, TimeoutError):
            raise TargetUnreachable(f"could not resolve {host}") from None
        addresses = _dedupe(
            to_address(str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)
        )
        if not addresses:
            raise TargetUnreachable(f"could not resolve {host}")
        return addresses


class StaticResolver:
    """A fixed name -> addresses table (tests, pinned hosts); unknown names go to ``fallback``."""

    def __init__(
        self,
        mapping: Mapping[str, str | Address | Iterable[str | Address]],
        fallback: Resolver | None = None,
    ) -> None:
        self.mapping: dict[str, list[Address]] = {}
        for name, value in mapping.items():
            values = (
                [value] if isinstance(value, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)) else value
            )
            self.mapping[name.lower().rstrip(".")] = _dedupe(to_address(v) for v in values)
        self.fallback = fallback
        self.calls: list[str] = []  # every name asked for, so tests can prove "resolved once"

    async def resolve(self, host: str, port: int) -> list[Address]:
        self.calls.append(host)
        found = self.mapping.get(host.lower().rstrip("."))
        if found:
            return list(found)
        if self.fallback is not None:
            return await self.fallback.resolve(host, port)
        raise TargetUnreachable(f"could not resolve {host}")


async def resolve_host(resolver: Resolver, host: str, port: int) -> list[Address]:
    """Addresses a browser would connect to for ``host``: literals as-is, localhost without DNS."""
    try:
        return [to_address(host)]
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return list(_LOOPBACK)
    return await resolver.resolve(host, port)


def first_blocked(policy: EgressPolicy, addresses: Iterable[Address], port: int) -> str | None:
    """The reason for the first blocked address: one bad answer taints the whole name."""
    return next((r for r in (policy.check(ip, port) for ip in addresses) if r is not None), None)


async def check_target(
    raw_url: str, policy: EgressPolicy, resolver: Resolver, *, what: str = "url"
) -> TargetUrl:
    """Parse ``raw_url`` and make sure every address it resolves to is allowed.

    Raises ``InvalidUrl`` (syntax), ``TargetUnreachable`` (DNS) or ``EgressBlocked``.
    """
    target = parse_target_url(raw_url, what=what)
    addresses = (
        [target.ip] if target.ip is not None else await resolve_host(resolver, target.host, target.port)
    )
    reason = first_blocked(policy, addresses, target.port)
    if reason is not None:
        raise EgressBlocked(
            f"{what} {target.host} resolves to a blocked address: {reason}",
            details={"field": what, "host": target.host},
        )
    return target
