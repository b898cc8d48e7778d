"""A minimal DevTools-protocol client over an aiohttp websocket (flattened sessions).

The floor speaks CDP through this instead of pyppeteer so that what it measures
is Chromium's own cost, not a driver's: no target discovery, no per-frame
bookkeeping, one JSON message per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import aiohttp


class CdpError(RuntimeError):
    """A DevTools command answered with an error, or the connection went away."""


class CdpConnection:
    """Minimal CDP client: commands by id, events delivered to one-shot waiters."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        # (sessionId, method) -> futures resolved by the next such event
        self._waiters: dict[tuple[str | None, str], list[asyncio.Future[dict[str, Any]]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._ws.send_str(json.dumps(message))
            return await future
        finally:
            self._pending.pop(msg_id, None)

    def wait_for(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next ``method`` event (register *before* causing it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault((session, method), []).append(future)
        return future

    def forget(self, session: str) -> None:
        for key in [k for k in self._waiters if k[0] == session]:
            for future in self._waiters.pop(key):
                future.cancel()

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is not None and not future.done():
                        if "error" in data:
                            future.set_exception(CdpError(f"{data['error'].get('message')}"))
                        else:
                            future.set_result(data.get("result", {}))
                elif "method" in data:
                    for future in self._waiters.pop((data.get("sessionId"), data["method"]), []):
                        if not future.done():
                            future.set_result(data.get("params", {}))
        finally:
            error = CdpError("the DevTools connection closed")
            for future in [*self._pending.values(), *itertools.chain(*self._waiters.values())]:
                if not future.done():
                    future.set_exception(error)
            self._waiters.clear()

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
