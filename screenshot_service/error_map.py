"""The one mapping from the layers' exceptions to SPEC §4 codes, used at every edge
(the error middleware, a job's recorded error, the command line)."""

from __future__ import annotations

import logging

from . import errors as api
from .browser import errors as browser
from .egress import errors as egress
from .faults import LayerError
from .state import errors as state
from .storage import errors as storage

log = logging.getLogger("screenshot_service.errors")

# Most specific first: the first class the error is an instance of decides its code.
_CODES: tuple[tuple[type[LayerError], type[api.ApiError]], ...] = (
    (state.StateError, api.StateUnavailable),
    (storage.BucketRejected, api.InvalidParameter),
    (storage.StorageError, api.StorageError),
    (browser.Overloaded, api.Overloaded),
    (browser.PageMemoryExceeded, api.PageMemoryExceeded),
    (browser.PoolError, api.BrowserUnavailable),
    (egress.InvalidUrl, api.InvalidUrl),
    (egress.TargetUnreachable, api.TargetUnreachable),
    (egress.EgressBlocked, api.BlockedTarget),
    (egress.EgressError, api.TargetUnreachable),
)


def as_api_error(error: LayerError) -> api.ApiError:
    """The §4 error a layer's exception is, its message, details and Retry-After kept."""
    for layer_kind, api_kind in _CODES:
        if isinstance(error, layer_kind):
            return api_kind(error.message, details=error.details, retry_after=error.retry_after)
    # A LayerError outside the table is a new kind nobody mapped: a bug, answered and logged as one.
    log.error("no SPEC code for %s: %s", type(error).__name__, error.message, exc_info=error)
    return api.InternalError("internal error")
