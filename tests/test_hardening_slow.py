"""Slow and unfinished requests (Step 13, finding 1) never hold a place in the pool.

Raw sockets play the attacker: a complete head announcing a 100 000-byte body,
then a single ``{`` and silence.  Keyed captures must still succeed while those
connections are open, and the read timeouts must answer and close them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from screenshot_service.app import create_app, server_options
from screenshot_service.appkeys import CAPTURE, STATE
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.limits.keys import create_key
from screenshot_service.state.sqlite import SqliteStateStore
from tests import conftest
from tests.conftest import base_settings, wait_for

SLOW_BODY = (
    b"POST /v1/screenshot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100000\r\n\r\n{"
)
BOUND = 60.0  # seconds any wait here may take on a loaded machine; never a timing assertion


@dataclass
class Served:
    client: TestClient
    app: web.Application
    key: str
    port: int
    site: str  # the test site's base URL
    entered: list[str]  # paths of requests whose head was complete and reached the app


@pytest.fixture
async def serve(
    tmp_path: Path, test_site: conftest.TestSite, shared_pool: BrowserPool
) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    clients: list[TestClient] = []

    async def make(**server: Any) -> Served:
        settings = base_settings(tmp_path / f"s{len(clients)}", test_site.port, server={"drain_seconds": 5.0, **server})
        state = SqliteStateStore(settings.state.sqlite.path)
        _, raw = await create_key(state, "unlimited", "test")
        app = create_app(settings, pool=shared_pool, state=state)
        entered: list[str] = []

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            entered.append(request.path)
            return await handler(request)

        app.middlewares.insert(0, count)
        server = TestServer(app)
        # TestServer drops constructor kwargs: the handler options go to start_server.
        await server.start_server(**server_options(settings))
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        assert client.port is not None
        return Served(client=client, app=app, key=raw, port=client.port, site=test_site.url, entered=entered)

    yield make
    for client in clients:
        await client.close()


async def _open(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


@contextlib.asynccontextmanager
async def _slow_connections(port: int, n: int) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    conns = [await _open(port, SLOW_BODY) for _ in range(n)]
    try:
        yield conns
    finally:
        for _, writer in conns:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def test_slow_bodies_do_not_block_keyed_captures(serve: Callable[..., Awaitable[Served]]) -> None:
    # More slow connections than the pool has places (2 slots + 8 queue), and more than the
    # bound on unauthenticated body reads; long read timeouts keep them all open meanwhile.
    served = await serve(body_timeout_seconds=300.0, head_timeout_seconds=300.0, max_unauthenticated=12)
    n = 16
    async with _slow_connections(served.port, n):
        assert await wait_for(lambda: served.entered.count("/v1/screenshot") >= n, BOUND)
        site = served.site
        get = await served.client.get("/v1/screenshot", params={"url": site + "/paint", "api_key": served.key})
        assert get.status == 200, await get.text()
        post = await served.client.post(
            "/v1/screenshot", json={"url": site + "/paint"}, headers={"Authorization": f"Bearer {served.key}"}
        )
        assert post.status == 200, await post.text()
        # The key inside the body cannot be known before reading it: such a request waits
        # behind the unauthenticated bound, and is told so at once (never queued).
        in_body = await served.client.post("/v1/screenshot", json={"url": site + "/paint", "api_key": served.key})
        assert in_body.status == 503
        assert (await in_body.json())["error"]["code"] == "overloaded"


async def test_a_body_not_sent_in_time_is_answered_408_and_closed(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(body_timeout_seconds=1.0)
    async with _slow_connections(served.port, 3) as conns:
        for reader, _ in conns:
            answer = await asyncio.wait_for(reader.read(), BOUND)  # read() returns at EOF: closed
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b'"request_timeout"' in answer
    # The places were never taken, and the capture endpoint is still serving.
    site = served.site
    ok = await served.client.get("/v1/screenshot", params={"url": site + "/paint", "api_key": served.key})
    assert ok.status == 200


async def test_an_unfinished_head_is_closed(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(head_timeout_seconds=1.0)
    partial = await _open(served.port, b"POST /v1/screenshot HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    silent = await _open(served.port, b"")
    for reader, writer in (partial, silent):
        try:
            assert await asyncio.wait_for(reader.read(), BOUND) == b""  # closed, nothing answered
        finally:
            writer.close()


async def test_a_full_pool_sheds_before_any_state_round_trip(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve()
    state = served.app[STATE]
    lookups = 0
    original = state.key_by_hash

    async def counting(key_hash: str) -> Any:
        nonlocal lookups
        lookups += 1
        return await original(key_hash)

    state.key_by_hash = counting  # type: ignore[method-assign]
    pool = served.app[CAPTURE].pool
    with contextlib.ExitStack() as stack:
        for _ in range(pool.admission.pool_size + pool.admission.max_queue):
            stack.enter_context(pool.place())
        site = served.site
        for response in (
            await served.client.get("/v1/screenshot", params={"url": site + "/paint", "api_key": served.key}),
            await served.client.post("/v1/screenshot", json={"url": site, "api_key": served.key}),
            await served.client.post("/v1/screenshot", json={"url": site}, headers={"X-API-Key": served.key}),
        ):
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "overloaded"
    assert lookups == 0
