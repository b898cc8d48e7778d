"""One listening port of the egress proxy, and what was refused or unreachable through it.

Each capture can get its own channel (``EgressProxy.open_channel``), so refusals
are attributed to the capture that caused them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .http1 import HEAD_LIMIT

if TYPE_CHECKING:
    from .chain import ProxyFailure
    from .upstream import Upstream

log = logging.getLogger("screenshot_service.egress.proxy")

ConnectionHandler = Callable[["ProxyChannel", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ProxyChannel:
    """One listening port; everything refused on it is recorded in ``blocked``."""

    def __init__(
        self,
        host: str,
        handle: ConnectionHandler,
        on_close: Callable[[ProxyChannel], None],
        blocked_hosts: Callable[[str], bool] | None,
    ) -> None:
        self.host = host
        self._handle = handle  # serves one client connection (the proxy's logic)
        self._on_close = on_close
        # Set per capture (ad/tracker lists); read on every request, so it can change between leases.
        self.blocked_hosts = blocked_hosts
        # Set per capture too: the upstream proxy its requests are chained through (None: direct).
        self.upstream: Upstream | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # open client connections, cancelled on close
        self._closed = False
        self.port = 0
        self.blocked: list[tuple[str, str]] = []  # (host, reason) for every refused request
        # (host, reason) for every origin that could not be resolved or connected to: for https
        # the browser sees only a failed tunnel, so a capture asks here which failure it was.
        self.unreachable: list[tuple[str, str]] = []
        self.proxy_failures: list[ProxyFailure] = []  # every failure of the upstream proxy
        self.requests = 0  # requests (plain or CONNECT) received

    @property
    def proxy_server(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut every open connection and tunnel of this channel."""
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None:
            writer.close()
            return
        self._tasks.add(task)
        try:
            await self._handle(self, reader, writer)
        except asyncio.CancelledError:
            # Only close() cancels these. Ending normally matters: Python 3.11's stream server
            # calls exception() on a finished connection task, which raises for a cancelled one.
            pass
        except Exception:
            log.exception("egress proxy: unexpected error")
        finally:
            self._tasks.discard(task)
            writer.close()
