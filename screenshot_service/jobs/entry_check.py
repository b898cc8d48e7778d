"""The checks every capture accepted for later (a job, a batch item, a monitor) passes at once.

What the plan allows (``proxy_pool``, a ``proxy`` of one's own), the target and the proxy's
address against the egress policy: a 400 naming the field now rather than failed runs later.
A target whose name does not resolve is let through: DNS may recover before the capture runs.
A ``compare_to`` naming a capture id is looked up now too (VisualChange.find): an id this key
cannot use is the same 400 a sync request gets, not a failed job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from ..capture.diff_options import PREVIOUS
from ..capture.options import CaptureOptions
from ..capture.proxy_options import check_access
from ..config import PlanConfig
from ..egress.errors import TargetUnreachable
from ..egress.policy import EgressPolicy
from ..egress.resolver import Resolver, check_target
from ..errors import InvalidParameter


def as_given(field: str) -> str:
    return field


@dataclass(frozen=True)
class EntryCheck:
    policy: EgressPolicy
    resolver: Resolver
    pools: Collection[str]  # the names of the operator's [proxies.NAME] pools
    # The capture service's baseline lookup (compare_to=<id>, for a key id); None: not checked here.
    baselines: Callable[[CaptureOptions, str], Awaitable[Any]] | None = None

    async def check(self, plan_name: str, plan: PlanConfig, opts: CaptureOptions,
                    name: Callable[[str], str] = as_given, *, account: str | None = None) -> None:  # fmt: skip
        """InvalidParameter, or the egress layer's InvalidUrl / EgressBlocked, naming the field
        as ``name`` spells it (``requests[2].proxy``, ``defaults.url`` for a batch)."""
        try:
            check_access(opts.proxy_pool, opts.proxy is not None, plan_name, plan, self.pools)
            if self.baselines is not None and account is not None and opts.compare_to not in (None, PREVIOUS):
                await self.baselines(opts, account)
        except InvalidParameter as refused:
            raise InvalidParameter.fields(
                {name(field): why for field, why in refused.details.get("fields", {}).items()}
            ) from None
        if opts.url:
            await self._target(opts.url, name("url"))
        if opts.proxy is not None:
            await self._target(f"http://{opts.proxy.address}/", name("proxy"))

    async def _target(self, url: str, what: str) -> None:
        try:
            await check_target(url, self.policy, self.resolver, what=what)
        except TargetUnreachable:
            pass  # DNS may recover before the capture runs; if not, it fails with target_unreachable
