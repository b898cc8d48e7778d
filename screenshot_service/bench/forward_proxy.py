"""A small real HTTP forward proxy on loopback: the upstream of the proxy bench (upstream.py)
and of the upstream-proxy tests (tests/test_upstream_proxies.py).

It speaks CONNECT (https, wss) and absolute-form requests (plain http), may demand Basic
credentials (407 otherwise), may refuse every CONNECT with a status, resolves names through
its own table (a geo proxy resolves in its own network), and records what it received.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Received:
    request_lines: list[str] = field(default_factory=list)
    connect_targets: list[str] = field(default_factory=list)  # host:port of every CONNECT
    authorizations: list[str | None] = field(default_factory=list)  # Proxy-Authorization of each request
    hosts: list[str] = field(default_factory=list)  # the target host of every request, as sent


class ForwardProxy:
    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        refuse_connect: int | None = None,
    ) -> None:
        self.credentials = credentials
        self.names = dict(names or {})
        self.refuse_connect = refuse_connect
        self.received = Received()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        return f"http://{user}:{password}@{self.address}" if user is not None else f"http://{self.address}"

    async def start(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")[:-2]
        fields = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
        authorization = next((v for n, v in fields if n.lower() == "proxy-authorization"), None)
        method, target, version = request_line.split(" ")
        self.received.request_lines.append(request_line)
        self.received.authorizations.append(authorization)
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if authorization != expected:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            self.received.connect_targets.append(target)
            self.received.hosts.append(host.strip("[]"))
            if self.refuse_connect is not None:
                writer.write(f"HTTP/1.1 {self.refuse_connect} Refused\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                return
            up_reader, up_writer = await self._connect(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            url = urlsplit(target)
            host = url.hostname or ""
            self.received.hosts.append(host)
            up_reader, up_writer = await self._connect(host, url.port or 80)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [f"{n}: {v}" for n, v in fields if n.lower() not in ("proxy-authorization", "proxy-connection")]
            up_writer.write(("\r\n".join([f"{method} {path} {version}", *kept]) + "\r\n\r\n").encode("latin-1"))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.names.get(host, host), port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
