"""The ``proxy`` and ``proxy_pool`` options (SPEC §3.4): their parsers, what a plan may use, and
which upstream proxy a capture goes through.

The upstream itself is the egress layer's (egress/upstream.py, egress/chain.py); this module
only turns options and a plan into one ``Upstream`` per capture.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from ..config import PlanConfig
from ..config_proxies import ALL_POOLS, POOL_NAME
from ..egress.chain import BLOCKED, OPERATORS_PROXY, UNREACHABLE, ProxyFailure
from ..egress.dial import Blocked, resolve_checked
from ..egress.errors import EgressBlocked, InvalidUrl, TargetUnreachable
from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver
from ..egress.upstream import SHAPE, ProxyPools, Upstream, parse_upstream, pool_member_at
from ..errors import InvalidParameter, ProxyError
from .scalar_parsers import Bad, described

log = logging.getLogger("screenshot_service.capture")


def _proxy(value: Any) -> Upstream:
    try:
        return parse_upstream(value, what="proxy")
    except InvalidUrl as error:
        raise Bad(error.message.removeprefix("proxy ")) from None


def _pool_name(value: Any) -> str:
    if not isinstance(value, str) or not POOL_NAME.fullmatch(value):
        raise Bad("must be the name of a proxy pool: letters, digits, '-' and '_'")
    return value


proxy = described(_proxy, {"type": "string", "maxLength": 2048, "examples": ["http://user:pass@proxy.example:3128"],
                           "description": SHAPE})
pool_name = described(_pool_name, {"type": "string", "pattern": POOL_NAME.pattern})


def check_access(proxy_pool: str | None, custom_proxy: bool, plan_name: str, plan: PlanConfig,
                 pools: Collection[str]) -> None:
    """InvalidParameter naming the option when the key's plan may not use what the capture asks for."""
    if custom_proxy and not plan.custom_proxy:
        raise InvalidParameter.fields({"proxy": f"plan '{plan_name}' does not allow a proxy of your own"})
    if proxy_pool is None:
        return
    allowed = [n for n in pools if ALL_POOLS in plan.proxy_pools or n in plan.proxy_pools]
    if proxy_pool not in allowed:
        why = f"there is no proxy pool {proxy_pool!r}" if proxy_pool not in pools else \
            f"plan '{plan_name}' may not use the proxy pool {proxy_pool!r}"
        offer = ", ".join(repr(n) for n in allowed) or "none"
        raise InvalidParameter.fields({"proxy_pool": f"{why}; the pools plan '{plan_name}' may use: {offer}"})


def upstream_for(proxy_given: Upstream | None, proxy_pool: str | None, pools: ProxyPools) -> Upstream | None:
    """The upstream one capture goes through: the caller's own, its pool's next, or none."""
    if proxy_given is not None:
        return proxy_given
    if proxy_pool is None:
        return None
    if proxy_pool not in pools:
        raise InvalidParameter.fields({"proxy_pool": f"there is no proxy pool {proxy_pool!r}"})
    return pools.pick(proxy_pool)


async def checked_upstream(proxy_given: Upstream | None, proxy_pool: str | None, pools: ProxyPools,
                           policy: EgressPolicy, resolver: Resolver) -> Upstream | None:
    """``upstream_for``, its address checked by the egress policy now, before any browser work (the
    egress proxy checks it again on every connection: names can change).  A caller's own proxy
    that is refused is a 400 naming ``proxy``; a pool's is the operator's problem, a 502 naming
    the pool but never its proxies' hosts, which only the log shows."""
    upstream = upstream_for(proxy_given, proxy_pool, pools)
    if upstream is None:
        return None
    try:
        addresses = await resolve_checked(policy, resolver, upstream.host, upstream.port, ())
    except TargetUnreachable:
        if upstream.pool is not None:
            raise _pool_unusable(upstream, UNREACHABLE, "could not resolve") from None
        raise ProxyError(f"the upstream proxy could not be reached (could not resolve {upstream.host})") from None
    except Blocked as blocked:
        if upstream.pool is not None:
            raise _pool_unusable(upstream, BLOCKED, blocked.reason) from None
        raise EgressBlocked(f"proxy {upstream.host} resolves to a blocked address: {blocked.reason}",
                            details={"field": "proxy", "host": upstream.host}) from None
    if proxy_given is None:
        return upstream
    guarded = replace(upstream, not_into=pools.members)
    if await pool_member_at(resolver, addresses, guarded) is not None:
        raise EgressBlocked(f"proxy {upstream.host} is not allowed: {OPERATORS_PROXY}",
                            details={"field": "proxy", "host": upstream.host})
    return guarded


def _pool_unusable(member: Upstream, kind: str, why: str) -> ProxyError:
    log.warning("proxy pool %s: its proxy %s is unusable: %s", member.pool, member.address, why)
    failure = ProxyFailure(kind, member.address, target="", pool=member.pool)
    return ProxyError(failure.message, details={"proxy_pool": member.pool})
