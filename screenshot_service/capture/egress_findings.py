"""What the egress proxy refused, or could not reach, during one capture.

The proxy channel belongs to the leased context and records every refusal
on it; a capture reads only the records made since its session began, so what
an earlier use of the same channel met is never this capture's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..egress.chain import ProxyFailure
    from ..egress.channel import ProxyChannel

Finding = tuple[str, str]  # (host, reason)


class EgressFindings:
    """This capture's share of its proxy channel's records (none without a channel)."""

    def __init__(self, channel: ProxyChannel | None) -> None:
        self._channel = channel
        self._refused_from = len(channel.blocked) if channel is not None else 0
        self._unreachable_from = len(channel.unreachable) if channel is not None else 0
        self._proxy_from = len(channel.proxy_failures) if channel is not None else 0

    @property
    def refused(self) -> list[Finding]:
        """Every request the proxy refused (egress policy or the capture's block lists)."""
        return self._channel.blocked[self._refused_from:] if self._channel is not None else []

    @property
    def unreachable(self) -> list[Finding]:
        """Every origin the proxy could not resolve or connect to."""
        return self._channel.unreachable[self._unreachable_from:] if self._channel is not None else []

    @property
    def proxy_failures(self) -> list[ProxyFailure]:
        """Every failure of the capture's upstream proxy (unreachable, refused, 407, not allowed)."""
        return self._channel.proxy_failures[self._proxy_from:] if self._channel is not None else []
