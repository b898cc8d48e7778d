"""The ``proxy`` and ``proxy_pool`` options (SPEC §3.4): their parsers, what a plan may use, and
which upstream proxy a capture goes through.

The upstream itself is the egress layer's (egress/upstream.py, egress/chain.py); this module
only turns options and a plan into one ``Upstream`` per capture.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from ..config import PlanConfig
from ..config_proxies import ALL_POOLS
from ..egress.errors import InvalidUrl, TargetUnreachable
from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver, check_target
from ..egress.upstream import SHAPE, ProxyPools, Upstream, parse_upstream
from ..errors import InvalidParameter, ProxyError
from .scalar_parsers import Bad, described

_POOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _proxy(value: Any) -> Upstream:
    try:
        return parse_upstream(value, what="proxy")
    except InvalidUrl as error:
        raise Bad(error.message.removeprefix("proxy ")) from None


def _pool_name(value: Any) -> str:
    if not isinstance(value, str) or not _POOL_NAME.fullmatch(value):
        raise Bad("must be the name of a proxy pool: letters, digits, '-' and '_'")
    return value


proxy = described(_proxy, {"type": "string", "maxLength": 2048, "examples": ["http://user:pass@proxy.example:3128"],
                           "description": SHAPE})
pool_name = described(_pool_name, {"type": "string", "pattern": _POOL_NAME.pattern})


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
    """``upstream_for``, its address checked by the egress policy now for a clear 400 naming the
    option (the egress proxy checks it again on every connection: names can change)."""
    upstream = upstream_for(proxy_given, proxy_pool, pools)
    if upstream is not None:
        try:
            await check_target(f"http://{upstream.address}/", policy, resolver,
                               what="proxy" if proxy_given is not None else "proxy_pool")
        except TargetUnreachable:
            raise ProxyError(f"the upstream proxy could not be reached (could not resolve {upstream.host})") from None
    return upstream
