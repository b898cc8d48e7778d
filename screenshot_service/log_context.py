"""What a log record is about: the request being served and the job being run.

The request middleware and the job worker bind these for the code they call; asyncio copies
context variables into the tasks that code starts, so every record written on a request's
behalf, however deep, names it (observability.py's formatters read them).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)


@contextlib.contextmanager
def bound(var: ContextVar[str | None], value: str) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def record_context(record: logging.LogRecord) -> dict[str, str]:
    """The ids a record carries: its own ``extra`` ones first, else those bound where it was written."""
    ids = {"request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
           "job_id": getattr(record, "job_id", None) or JOB_ID.get()}
    return {name: value for name, value in ids.items() if value}
