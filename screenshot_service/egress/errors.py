"""The egress layer's exceptions: a URL that is no URL, a host with no way to it, a refused target."""

from __future__ import annotations

from ..faults import LayerError


class EgressError(LayerError):
    """A target the egress layer cannot or will not reach."""


class InvalidUrl(EgressError):
    """Not a URL the service can capture (syntax, scheme, credentials, length)."""


class TargetUnreachable(EgressError):
    """No DNS answer, or no connection to any of the host's addresses."""


class EgressBlocked(EgressError):
    """The egress policy refuses every address of the target (SPEC §7 Egress)."""
