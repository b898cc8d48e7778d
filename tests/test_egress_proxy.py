"""The egress proxy against real local servers: a recording aiohttp "canary" and a TCP echo server.

Everything listens on 127.0.0.1, which the default policy blocks; tests that
must get through add an ``egress.allow`` entry for exactly the port they use.
Names are answered by a ``StaticResolver``, so no test does real DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from screenshot_service.config import EgressConfig
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.proxy import EgressProxy
from screenshot_service.egress.resolver import StaticResolver
from tests.conftest import wait_for

Canary = tuple[TestServer, list[dict[str, Any]]]
MakeProxy = Callable[..., Awaitable[EgressProxy]]


@pytest.fixture
async def canary(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Canary:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append(
            {"method": request.method, "path": request.path_qs, "headers": request.headers, "body": body}
        )
        if request.path == "/big":
            return web.Response(body=b"x" * 2_000_000)
        return web.Response(text="canary ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return await aiohttp_server(app), seen


class Echo:
    """A TCP echo server counting its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = server.server.sockets[0].getsockname()[1]
    yield server
    server.server.close()
    await server.server.wait_closed()


@pytest.fixture
async def make_proxy() -> AsyncIterator[MakeProxy]:
    proxies: list[EgressProxy] = []

    async def make(allow: list[str] | None = None, resolver: StaticResolver | None = None) -> EgressProxy:
        policy = EgressPolicy.from_config(EgressConfig(allow=allow or []))
        proxy = EgressProxy(policy, resolver or StaticResolver({}))
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        await proxy.stop()


async def get(proxy_server: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, proxy=proxy_server, **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def raw(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Send ``request`` to the proxy; return the streams and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def raw_once(port: int, request: bytes) -> bytes:
    reader, writer, head = await raw(port, request)
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return head + rest


# --------------------------------------------------------------------------- plain HTTP


async def test_get_reaches_allowed_canary(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"])
    status, headers, body = await get(proxy.proxy_server, f"http://127.0.0.1:{server.port}/hello?x=1")
    assert (status, body) == (200, b"canary ok")
    assert headers["Connection"] == "close"
    assert [s["path"] for s in seen] == ["/hello?x=1"]
    assert seen[0]["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert proxy.channel.requests == 1 and proxy.channel.blocked == []


async def test_name_is_resolved_once_and_host_header_kept(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    resolver = StaticResolver({"canary.test": "127.0.0.1"})
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"], resolver=resolver)
    status, _, _ = await get(proxy.proxy_server, f"http://canary.test:{server.port}/")
    assert status == 200
    assert resolver.calls == ["canary.test"]
    assert seen[0]["headers"]["Host"] == f"canary.test:{server.port}"


async def test_default_policy_blocks_loopback(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy()
    status, headers, body = await get(proxy.proxy_server, f"http://127.0.0.1:{server.port}/")
    assert status == 403 and headers["X-Screenshot-Egress"] == "refused"
    assert b"loopback address 127.0.0.1" in body
    assert seen == []
    assert proxy.channel.blocked == [("127.0.0.1", "loopback address 127.0.0.1")]


async def test_allow_entry_is_port_specific(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    assert server.port is not None
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port + 1}"])
    status, _, _ = await get(proxy.proxy_server, f"http://127.0.0.1:{server.port}/")
    assert status == 403 and seen == []


async def test_rebinding_name_is_blocked(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy(resolver=StaticResolver({"rebind.test": "127.0.0.1"}))
    status, _, _ = await get(proxy.proxy_server, f"http://rebind.test:{server.port}/")
    assert status == 403 and seen == []
    assert proxy.channel.blocked == [("rebind.test", "loopback address 127.0.0.1")]


async def test_one_bad_answer_blocks_before_any_connect(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(resolver=StaticResolver({"mixed.test": ["93.184.216.34", "10.0.0.1"]}))
    status, _, _ = await get(proxy.proxy_server, "http://mixed.test/")
    assert status == 403


async def test_unresolvable_name_is_502(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    status, headers, body = await get(proxy.proxy_server, "http://nowhere.test/")
    assert status == 502 and headers["X-Screenshot-Egress"] == "unreachable"
    assert b"could not resolve nowhere.test" in body
    assert proxy.channel.unreachable == [("nowhere.test", "could not resolve nowhere.test")]


async def test_closed_port_is_502_marked_unreachable(make_proxy: MakeProxy) -> None:
    with socket.socket() as closed:  # bound, never listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        proxy = await make_proxy(allow=[f"127.0.0.1:{port}"])
        status, headers, _ = await get(proxy.proxy_server, f"http://127.0.0.1:{port}/")
        assert status == 502 and headers["X-Screenshot-Egress"] == "unreachable"
        tunnel = await raw_once(proxy.port, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        assert tunnel.startswith(b"HTTP/1.1 502 ") and b"X-Screenshot-Egress: unreachable" in tunnel
    assert proxy.channel.unreachable == [("127.0.0.1", f"could not connect to 127.0.0.1 port {port}")] * 2
    assert proxy.channel.blocked == []


async def test_an_origin_cannot_forge_the_egress_mark(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    async def forged(request: web.Request) -> web.Response:
        return web.Response(text="mine", headers={"X-Screenshot-Egress": "refused"})

    app = web.Application()
    app.router.add_get("/", forged)
    server = await aiohttp_server(app)
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"])
    status, headers, body = await get(proxy.proxy_server, f"http://127.0.0.1:{server.port}/")
    assert (status, body) == (200, b"mine") and "X-Screenshot-Egress" not in headers


async def test_non_http_absolute_uri_is_403(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    response = await raw_once(proxy.port, b"GET ftp://example.com/file HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"X-Screenshot-Egress: refused" in response


async def test_origin_form_request_is_400(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    response = await raw_once(proxy.port, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_ambiguous_length_is_400(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"])
    request = (
        f"POST http://127.0.0.1:{server.port}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert (await raw_once(proxy.port, request.encode())).startswith(b"HTTP/1.1 400 ")
    assert seen == []


async def test_hop_by_hop_and_proxy_headers_are_dropped(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"])
    request = (
        f"GET http://127.0.0.1:{server.port}/h HTTP/1.1\r\nHost: wrong.example\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
        "Connection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\nX-Kept: yes\r\n\r\n"
    )
    response = await raw_once(proxy.port, request.encode())
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"canary ok")
    headers = seen[0]["headers"]
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["X-Kept"] == "yes" and headers["Connection"] == "close"
    for name in ("Proxy-Authorization", "Proxy-Connection", "X-Private", "Keep-Alive"):
        assert name not in headers


async def test_streaming_bodies_both_ways(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"])

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"y" * 10_000

    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{server.port}/upload"
        async with session.post(url, data=chunks(), proxy=proxy.proxy_server) as resp:
            assert resp.status == 200
        async with session.get(f"http://127.0.0.1:{server.port}/big", proxy=proxy.proxy_server) as resp:
            assert len(await resp.read()) == 2_000_000
    assert seen[0]["headers"]["Transfer-Encoding"] == "chunked"
    assert seen[0]["body"] == b"y" * 500_000


async def test_request_to_the_proxy_itself_is_refused(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(allow=["127.0.0.1"])
    status, _, body = await get(proxy.proxy_server, f"http://127.0.0.1:{proxy.port}/")
    assert status == 403 and b"egress proxy itself" in body


# --------------------------------------------------------------------------- CONNECT


async def test_connect_to_blocked_address_is_403(echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    response = await raw_once(proxy.port, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert echo.connections == 0


async def test_connect_to_rebinding_name_is_403(echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(resolver=StaticResolver({"rebind.test": "127.0.0.1"}))
    response = await raw_once(proxy.port, f"CONNECT rebind.test:{echo.port} HTTP/1.1\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert echo.connections == 0


async def test_connect_without_port_is_400(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    response = await raw_once(proxy.port, b"CONNECT example.com HTTP/1.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")


async def test_connect_tunnel_pipes_both_ways(echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(allow=[f"127.0.0.1:{echo.port}"])
    reader, writer, head = await raw(proxy.port, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode())
    assert head == b"HTTP/1.1 200 Connection Established\r\n\r\n"
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    payload = bytes(range(256)) * 4096  # 1 MiB, more than any socket buffer
    writer.write(payload)
    assert await reader.readexactly(len(payload)) == payload
    writer.write_eof()  # half-close travels through; the echo server then closes, and so do we
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    assert echo.connections == 1


# --------------------------------------------------------------------------- channels


async def test_blocked_hosts_callable_blocks_and_is_recorded(canary: Canary, make_proxy: MakeProxy) -> None:
    server, seen = canary
    resolver = StaticResolver({"tracker.ads.test": "127.0.0.1"})
    proxy = await make_proxy(allow=[f"127.0.0.1:{server.port}"], resolver=resolver)
    channel = await proxy.open_channel(blocked_hosts=lambda host: host.endswith("ads.test"))
    status, headers, _ = await get(channel.proxy_server, f"http://tracker.ads.test:{server.port}/pixel")
    assert status == 403 and headers["X-Screenshot-Egress"] == "refused"
    response = await raw_once(channel.port, b"CONNECT tracker.ads.test:443 HTTP/1.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 403 ")
    assert channel.blocked == [("tracker.ads.test", "blocklist")] * 2
    assert channel.requests == 2
    assert seen == [] and resolver.calls == []  # refused before any DNS
    assert proxy.channel.blocked == [] and proxy.channel.requests == 0  # attributed to its channel only
    await channel.close()


async def test_channels_listen_on_their_own_ports(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    first, second = await proxy.open_channel(), await proxy.open_channel()
    assert len({proxy.port, first.port, second.port}) == 3
    assert first.proxy_server == f"http://127.0.0.1:{first.port}"
    await first.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", first.port)
    assert (await raw_once(second.port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 400 ")


async def test_stop_closes_tunnels_and_leaves_no_tasks(echo: Echo) -> None:
    before = asyncio.all_tasks()
    policy = EgressPolicy.from_config(EgressConfig(allow=[f"127.0.0.1:{echo.port}"]))
    proxy = EgressProxy(policy, StaticResolver({}))
    await proxy.start()
    channel = await proxy.open_channel()
    tunnel_reader, tunnel_writer, head = await raw(
        channel.port, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode()
    )
    assert head.startswith(b"HTTP/1.1 200 ")
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # never sends a byte
    assert await wait_for(lambda: len(proxy.channel._tasks) == 1)  # accepted and being served: stop must cut it
    ports = (proxy.port, channel.port)

    await proxy.stop()

    assert await asyncio.wait_for(tunnel_reader.read(), 5) == b""
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    for writer in (tunnel_writer, idle_writer):
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0)  # one turn of the loop (no clock): the closed connections' tasks finish
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    for port in ports:
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(RuntimeError):
        _ = proxy.port


async def test_oversized_request_head_is_431(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    request = b"GET http://example.com/ HTTP/1.1\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
