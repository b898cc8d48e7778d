"""Give every browser context its own egress proxy channel.

Chromium's ``Target.createBrowserContext`` takes a per-context proxy, so each
capture's traffic arrives on its own port: refusals are counted for that
capture (``blocked_requests``) and its ad/tracker lists apply to it alone.
``<-loopback>`` removes Chromium's built-in bypass for localhost, so even
loopback targets go through the policy.
"""

from __future__ import annotations

from typing import Any

from .channel import ProxyChannel
from .proxy import EgressProxy

BYPASS_NOTHING = "<-loopback>"


def browser_flags(proxy: EgressProxy) -> tuple[str, ...]:
    """Launch flags: the default context goes through the proxy too."""
    return (f"--proxy-server={proxy.proxy_server}", f"--proxy-bypass-list={BYPASS_NOTHING}")


class ProxyContextHook:
    def __init__(self, proxy: EgressProxy) -> None:
        self.proxy = proxy

    async def open(self) -> tuple[dict[str, Any], ProxyChannel]:
        channel = await self.proxy.open_channel()
        return {"proxyServer": channel.proxy_server, "proxyBypassList": BYPASS_NOTHING}, channel

    async def close(self, handle: Any) -> None:
        await handle.close()
