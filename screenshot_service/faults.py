"""The root of the layers' own exceptions (state/, storage/, browser/, egress/).

A layer says what went wrong in its own terms and knows nothing of HTTP; each has
a small hierarchy in its ``errors`` module, like httpx's transport errors beside
its HTTP errors.  ``error_map.as_api_error`` turns one into its SPEC §4 code at
the edge (the error middleware, a job's record, the CLI).
"""

from __future__ import annotations

from typing import Any


class LayerError(Exception):
    """A failure below the API: a message fit for the caller, and when to retry if retrying helps."""

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after
