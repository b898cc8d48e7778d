"""Store calls that must land even when the task making them is cancelled.

A call to the job store that started may well take effect (a SQLite statement in its
worker thread, a Redis script already sent) although its caller stops waiting.  At
shutdown the runner is cancelled, and cancelled again by the cut-off, while it gives jobs
back or claims one: it must wait for such a call to end before it ends itself, or the
store is closed under the call and the job stays ``running`` until its lease runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Generic, TypeVar

T = TypeVar("T")


class Interrupted(asyncio.CancelledError, Generic[T]):
    """The caller was cancelled while the call ran; the call has ended all the same.

    ``result`` is what it returned (None when it raised ``error``)."""

    def __init__(self, result: T | None, error: BaseException | None) -> None:
        super().__init__()
        self.result = result
        self.error = error


async def outlast_cancellation(call: Awaitable[T]) -> T:
    """``call``'s result; cancelling the caller meanwhile (any number of times) waits for the
    call to end, then raises ``Interrupted`` with its outcome."""
    task = asyncio.ensure_future(call)
    interrupted = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            interrupted = True
    if not interrupted:
        return task.result()
    if task.cancelled():
        raise Interrupted(None, asyncio.CancelledError())
    error = task.exception()
    raise Interrupted(None if error is not None else task.result(), error)
