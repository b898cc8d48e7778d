"""Copying bytes between the browser and an origin through the egress proxy: a tunnel's two
directions, and one plain HTTP response with its head rewritten."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .http1 import UNREACHABLE, Refused, build_head, end_to_end, respond, split_head

CHUNK = 65536
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Copy = Coroutine[Any, Any, bool]  # one direction of a connection; False when a side broke


async def splice(upload: Copy, download: Copy, *, half_close: bool, linger: float) -> None:
    """Runs both directions of a connection until one ends; with ``half_close`` the other may
    still finish within ``linger`` seconds when the first ended cleanly."""
    tasks = {asyncio.ensure_future(upload), asyncio.ensure_future(download)}
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if half_close and pending and all(t.result() for t in done):
            # One side finished cleanly and its EOF was passed on: let the other finish, briefly.
            await asyncio.wait(pending, timeout=linger)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def pipe(reader: Reader, writer: Writer) -> bool:
    """Copy until EOF and pass the EOF on; False when either side broke."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except OSError:
        return False


async def relay_response(
    up_reader: Reader, writer: Writer, intercept: Callable[[int], Refused | None] | None = None
) -> bool:
    """Copy the origin's response, rewriting only its head so the client knows we close.

    ``intercept`` sees the final status first and may answer the client instead (an upstream
    proxy's 407 is the proxy's failure, not the origin's page)."""
    while True:
        try:
            head = await up_reader.readuntil(b"\r\n\r\n")
            status_line, fields = split_head(head)
            version, status_text, *_ = [*status_line.split(" ", 2), ""]
            status = int(status_text) if status_text.isdigit() and len(status_text) == 3 else 0
            if not version.startswith("HTTP/1.") or status < 100:
                raise ValueError(status_line)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await respond(writer, Refused(502, "the origin sent no valid HTTP response", verdict=UNREACHABLE))
            return False
        interim = 100 <= status < 200 and status != 101  # 100 Continue, 103 Early Hints: more follows
        instead = intercept(status) if intercept is not None and not interim else None
        if instead is not None:
            await respond(writer, instead)
            return False
        writer.write(head if interim else build_head(status_line, end_to_end(fields)))
        await writer.drain()
        if not interim:
            return await pipe(up_reader, writer)
