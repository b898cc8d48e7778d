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
from typing import IO

from .devtools import DevToolsConnection

log = logging.getLogger("screenshot_service.browser")

FLAG = "--remote-debugging-pipe"


# The child's fds 3 and 4 are set by a shell between fork and Chromium, from its stdin and
# stdout, not by Python in the forked child: under uvloop the forked child runs libuv's at-fork
# handler after preexec_fn, and that handler closes and reopens libuv's signal lock pipe by its
# numbers in this process.  Where io_uring is blocked (the default seccomp profile of podman,
# Docker and containerd), that pipe is fd 4 here, so a pipe moved to 4 by preexec_fn was closed
# before exec.  Standard streams are set up after every at-fork handler, by either event loop.
_STDIO_TO_3_AND_4 = 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null'


def with_pipes_at_3_and_4(argv: list[str]) -> list[str]:
    """``argv`` run so that it finds its stdin on fd 3 (give it the commands pipe's read end)
    and its stdout on fd 4 (the events pipe's write end); its stdin and stdout become /dev/null."""
    return ["/bin/sh", "-c", _STDIO_TO_3_AND_4, "sh", *argv]


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
