"""An upstream proxy a capture's requests are chained through (SPEC §3.4), and an operator's pools.

A proxy arrives as ``http://[user:pass@]host:port``, from a request body (``proxy``) or from
``[proxies.NAME] urls`` (``proxy_pool``).  The credentials are held as ``Secret`` and left out
of every repr; messages about a bad proxy URL describe the problem, never the text given,
since that text may hold a password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from ..config import ProxyPoolConfig, Secret
from .errors import InvalidUrl, TargetUnreachable
from .policy import Address, unwrap
from .resolver import Resolver, resolve_host
from .urls import parse_target_url

SHAPE = "http://[user:pass@]host:port"


@dataclass(frozen=True)
class Upstream:
    host: str  # canonical host name or IP text (no brackets)
    port: int
    ip: Address | None
    username: Secret = field(default=Secret(""), repr=False)
    password: Secret = field(default=Secret(""), repr=False)
    pool: str | None = None  # the operator's [proxies.NAME] pool it belongs to; None: the caller's own
    # For a caller's own proxy: the operator's pool members it must not be (egress.allow may open
    # them for the pools' sake, plans.X.proxy_pools decides who uses them), checked on every connect.
    not_into: tuple[Upstream, ...] = field(default=(), repr=False, compare=False)

    @property
    def address(self) -> str:
        """``host:port``: all that logs and error messages ever show of a proxy."""
        host = f"[{self.host}]" if self.ip is not None and self.ip.version == 6 else self.host
        return f"{host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic), or None without credentials."""
        if not self.username and not self.password:
            return None
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def identity(self) -> str:
        """A hash of the whole proxy, credentials included, for the cache fingerprint: residential
        proxies often pick the country by user name, so two credentials are two vantage points."""
        text = f"{self.host}\0{self.port}\0{self.username}\0{self.password}"
        return hashlib.sha256(text.encode()).hexdigest()


def parse_upstream(raw: object, *, what: str = "proxy") -> Upstream:
    """Validate ``raw``; ``InvalidUrl`` naming ``what`` (never quoting ``raw``) when it is no proxy URL."""

    def bad(problem: str) -> InvalidUrl:
        return InvalidUrl(f"{what} {problem}; expected {SHAPE} (http only)", details={"field": what})

    if not isinstance(raw, str) or not raw:
        raise bad("must be a non-empty string")
    if len(raw) > 2048:
        raise bad("is longer than 2048 characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw):
        raise bad("contains whitespace or control characters")
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise bad("must start with http://")
    if scheme.lower() != "http":
        raise bad(f"has the scheme {scheme.lower()[:10]!r}, which is not supported: the hop to the proxy is plain HTTP")
    rest = rest.removesuffix("/")
    if any(c in rest for c in "/?#\\"):
        raise bad("must not have a path, query or fragment")
    userinfo, at, hostport = rest.rpartition("@")
    username = password = ""
    if at:
        user_text, _, pass_text = userinfo.partition(":")  # a token as the user name alone is common
        try:
            username, password = unquote(user_text, errors="strict"), unquote(pass_text, errors="strict")
        except UnicodeDecodeError:
            raise bad("has credentials that are not UTF-8 once percent-decoded") from None
        if not username:
            raise bad("has credentials without a user name")
        if ":" in username or any(ord(c) < 0x20 or ord(c) == 0x7F for c in username + password):
            raise bad("has a user name with ':' or control characters in its credentials")
    if not hostport.rpartition(":")[2].isdigit() or hostport.endswith("]"):
        raise bad("needs an explicit port")
    try:
        target = parse_target_url(f"http://{hostport}/", what=what)
    except InvalidUrl as error:
        raise bad(error.message.removeprefix(what + " ")) from None
    return Upstream(target.host, target.port, target.ip, Secret(username), Secret(password))


class ProxyPools:
    """The operator's ``[proxies.NAME]`` pools, each used in turn (round robin in this process)."""

    def __init__(self, pools: Mapping[str, Sequence[Upstream]] | None = None) -> None:
        self._pools = {name: tuple(replace(m, pool=name) for m in members)
                       for name, members in (pools or {}).items() if members}
        self._turns = dict.fromkeys(self._pools, 0)

    @classmethod
    def from_config(cls, pools: Mapping[str, ProxyPoolConfig]) -> ProxyPools:
        return cls({name: [parse_upstream(u, what=f"proxies.{name}.urls") for u in pool.urls]
                    for name, pool in pools.items()})

    @property
    def members(self) -> tuple[Upstream, ...]:
        return tuple(m for members in self._pools.values() for m in members)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._pools)

    def __contains__(self, name: object) -> bool:
        return name in self._pools

    def pick(self, name: str) -> Upstream:
        """The pool's next proxy; KeyError for a pool that does not exist."""
        members = self._pools[name]
        turn = self._turns[name]
        self._turns[name] = (turn + 1) % len(members)
        return members[turn]


async def pool_member_at(resolver: Resolver, addresses: list[Address], upstream: Upstream) -> str | None:
    """The pool one of whose members is ``upstream`` (named alike, or at one of ``addresses`` and its
    port), or None; a member whose name does not resolve now is compared by name only."""
    candidates = [m for m in upstream.not_into if m.port == upstream.port]
    if not candidates:
        return None
    here = {unwrap(ip) for ip in addresses}

    async def theirs(member: Upstream) -> set[Address]:
        try:
            return {unwrap(ip) for ip in await resolve_host(resolver, member.host, member.port)}
        except TargetUnreachable:
            return set()

    found = await asyncio.gather(*(theirs(m) for m in candidates))
    return next((m.pool for m, ips in zip(candidates, found, strict=True)
                 if m.host == upstream.host or ips & here), None)
