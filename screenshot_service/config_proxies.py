"""Reading ``[proxies.NAME]`` (upstream proxy pools, SPEC §5) and checking the plans that name them.

Every URL is parsed at start-up like any config value, but a message about one never quotes
it: a proxy URL may hold a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .config import ConfigError, ProxyPoolConfig, Secret, Settings
from .egress.errors import InvalidUrl
from .egress.policy import EgressPolicy
from .egress.upstream import SHAPE, parse_upstream

ALL_POOLS = "*"
# A pool's name, in [proxies.NAME] and in the proxy_pool option alike.
POOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def build_proxies(raw: Any) -> dict[str, ProxyPoolConfig]:
    if not isinstance(raw, Mapping):
        raise ConfigError("proxies must be a table of [proxies.NAME] sections")
    pools: dict[str, ProxyPoolConfig] = {}
    for name, body in raw.items():
        if not POOL_NAME.fullmatch(name):
            raise ConfigError(f"proxies.{name}: a pool name is letters, digits, '-' and '_' (at most 64)")
        if not isinstance(body, Mapping):
            raise ConfigError(f"proxies.{name} must be a table with urls = [...]")
        unknown = sorted(set(body) - {"urls"})
        if unknown:
            raise ConfigError(f"unknown config key 'proxies.{name}.{unknown[0]}'; known keys here: urls")
        urls = body.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f"proxies.{name}.urls must be a list of {SHAPE} strings")
        if not urls:
            raise ConfigError(f"proxies.{name}.urls is empty: a pool needs at least one proxy URL")
        for index, url in enumerate(urls):
            try:
                parse_upstream(url, what=f"proxies.{name}.urls[{index}]")
            except InvalidUrl as error:
                raise ConfigError(error.message) from None
        pools[name] = ProxyPoolConfig(urls=[Secret(u) for u in urls])
    return pools


def check_plan_pools(settings: Settings) -> None:
    """Every pool a plan names exists: a typo would otherwise be a 400 on every use."""
    for plan_name, plan in settings.plans.items():
        unknown = [p for p in plan.proxy_pools if p != ALL_POOLS and p not in settings.proxies]
        if unknown:
            known = ", ".join(repr(n) for n in settings.proxies) or "none"
            raise ConfigError(f"plans.{plan_name}.proxy_pools names {unknown[0]!r}, which is no [proxies.NAME] "
                              f"table; allowed: '*' or a pool's name (pools: {known})")


def check_pool_addresses(settings: Settings) -> None:
    """A pool proxy given as an IP literal that the egress policy refuses could never be used:
    stop at start-up (a name is checked on every capture, since what it resolves to can change)."""
    policy = EgressPolicy.from_config(settings.egress)
    for name, pool in settings.proxies.items():
        for index, url in enumerate(pool.urls):
            proxy = parse_upstream(url, what=f"proxies.{name}.urls[{index}]")
            reason = policy.check(proxy.ip, proxy.port) if proxy.ip is not None else None
            if reason is not None:
                raise ConfigError(f"proxies.{name}.urls[{index}] is refused by the egress policy ({reason}): "
                                  "a pool's proxy on such an address needs an egress.allow entry")
