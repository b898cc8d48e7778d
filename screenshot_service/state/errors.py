"""The state store's exceptions (SQLite or Redis)."""

from __future__ import annotations

from ..faults import LayerError


class StateError(LayerError):
    """The state store failed."""


class StateUnavailable(StateError):
    """The store did not answer, or not in time: nothing it was asked to do can be assumed done."""
