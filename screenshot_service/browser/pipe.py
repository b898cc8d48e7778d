"""DevTools over a pipe pair (``--remote-debugging-pipe``) instead of a websocket.

Chromium reads commands on its fd 3 and writes answers and events on its fd 4,
each message a JSON text ended by a NUL byte.  Against the websocket:

* no DevTools port listens on the machine, so no other local process can drive
  the browser (a page cannot reach it either: that is the egress policy's job,
  but there is nothing left to reach);
* a command is one write and a message one split and one ``json.loads`` in the
  read callback: no websocket framing, and no task per command or per message.
  A capture exchanges about 60 messages, so this is a good part of what the
  service's own Python spends per capture (docs/browser.md).

``PipeConnection`` is the service's ``devtools.DevToolsConnection`` on that
transport: pyppeteer's browser, pages and events work unchanged on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import IO

from .devtools import DevToolsConnection

log = logging.getLogger("screenshot_service.browser")

COMMANDS_FD = 3  # Chromium reads commands here
EVENTS_FD = 4  # and writes answers and events here
FLAG = "--remote-debugging-pipe"


def child_pipes(commands: int, events: int) -> None:
    """Runs in the child before exec: its ends of the pipes become fds 3 and 4, whatever
    numbers they had here (either may already be 3 or 4, so both are moved out of the way first)."""
    moved = os.dup(commands), os.dup(events)
    os.dup2(moved[0], COMMANDS_FD)
    os.dup2(moved[1], EVENTS_FD)
    for fd in {*moved, commands, events} - {COMMANDS_FD, EVENTS_FD}:
        os.close(fd)


class PipeConnection(DevToolsConnection):
    """A connected pipe pair; every pending and later call fails at once when Chromium's end closes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, "pipe:")
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self._disposing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, events: IO[bytes], commands: IO[bytes]) -> PipeConnection:
        """Take over ``events`` (read) and ``commands`` (write); both are closed if this fails."""
        loop = asyncio.get_running_loop()
        self = cls(loop)
        try:
            self._reader, _ = await loop.connect_read_pipe(lambda: _EventsProtocol(self), events)
            self._writer, _ = await loop.connect_write_pipe(lambda: _CommandsProtocol(self), commands)
        except BaseException:
            for transport in (self._reader, self._writer):
                if transport is not None:
                    transport.close()
            events.close()
            commands.close()
            raise
        return self

    def _post(self, message: str) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            self._lost(None)  # fails this call with every other one
            return
        writer.write(message.encode() + b"\0")

    def _received(self, message: bytes) -> None:
        try:
            self.dispatch(json.loads(message))
        except Exception:  # a message we cannot handle ends the connection
            log.exception("devtools connection failed")
            self._lost(None)

    def _lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            log.debug("devtools pipe ended: %r", exc)
        if not self.dropped and self._disposing is None:
            self._disposing = self._loop.create_task(self.dispose())

    async def _close_transport(self) -> None:
        # abort, not close: a hung Chromium never drains what is still buffered for it
        if self._writer is not None:
            self._writer.abort()
        if self._reader is not None:
            self._reader.close()


class _EventsProtocol(asyncio.Protocol):
    def __init__(self, connection: PipeConnection) -> None:
        self._connection = connection
        self._partial: list[bytes] = []  # the start of a message still arriving (a screenshot spans reads)

    def data_received(self, data: bytes) -> None:
        start, end = 0, data.find(b"\0")
        while end >= 0:
            if self._partial:
                self._partial.append(data[start:end])
                message = b"".join(self._partial)
                self._partial.clear()
            else:
                message = data[start:end]
            self._connection._received(message)
            start, end = end + 1, data.find(b"\0", end + 1)
        if start < len(data):
            self._partial.append(data[start:])

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._lost(exc)


class _CommandsProtocol(asyncio.BaseProtocol):
    def __init__(self, connection: PipeConnection) -> None:
        self._connection = connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._lost(exc)
