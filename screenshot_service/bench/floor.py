"""The floor: the same captures through a bare DevTools-protocol loop on one Chromium.

No HTTP, no storage, no pyppeteer: an aiohttp websocket speaking CDP with
flattened sessions.  Each capture pays for everything on its critical path —
a fresh browser context, a target, the attach, navigation to the load event,
the screenshot and disposing the context — which is what a warm pool is
supposed to beat.  Chromium gets the service's own flags
(``launcher.BASE_FLAGS``) so the comparison is about the code, not the flags.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..browser import launcher
from .spec import CaptureSpec

_ENDPOINT = re.compile(rb"DevTools listening on (ws://\S+)")


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


class FloorBrowser:
    """One Chromium and one CDP connection; ``capture`` may be called concurrently."""

    def __init__(self, process: asyncio.subprocess.Process, session: aiohttp.ClientSession,
                 cdp: CdpConnection, user_data_dir: str) -> None:
        self.process = process
        self._session = session
        self.cdp = cdp
        self._user_data_dir = user_data_dir

    @property
    def pid(self) -> int:
        return self.process.pid

    async def capture(self, url: str, spec: CaptureSpec) -> bytes:
        cdp = self.cdp
        context = (await cdp.send("Target.createBrowserContext", {"disposeOnDetach": True}))["browserContextId"]
        session: str | None = None
        try:
            target = (await cdp.send("Target.createTarget",
                                     {"url": "about:blank", "browserContextId": context}))["targetId"]
            session = (await cdp.send("Target.attachToTarget",
                                      {"targetId": target, "flatten": True}))["sessionId"]
            await cdp.send("Page.enable", session=session)
            await cdp.send("Emulation.setDeviceMetricsOverride",
                           {"width": spec.width, "height": spec.height, "deviceScaleFactor": 1,
                            "mobile": False}, session=session)
            loaded = cdp.wait_for("Page.loadEventFired", session)
            navigation = await cdp.send("Page.navigate", {"url": url}, session=session)
            if navigation.get("errorText"):
                loaded.cancel()
                raise CdpError(f"navigation failed: {navigation['errorText']}")
            await loaded
            height = float(spec.height)
            if spec.full_page:
                metrics = await cdp.send("Page.getLayoutMetrics", session=session)
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                height = float(max(1, min(math.ceil(size["height"]), spec.max_height)))
            shot = await cdp.send("Page.captureScreenshot", {
                "format": "png", "fromSurface": True, "captureBeyondViewport": spec.full_page,
                "clip": {"x": 0, "y": 0, "width": float(spec.width), "height": height, "scale": 1},
            }, session=session)
            return base64.b64decode(shot["data"])
        finally:
            if session is not None:
                cdp.forget(session)
            with contextlib.suppress(CdpError):
                await cdp.send("Target.disposeBrowserContext", {"browserContextId": context})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.cdp.send("Browser.close"), 3)
        with contextlib.suppress(Exception):
            await self.cdp.close()
        await self._session.close()
        kill_group(self.process.pid)
        await self.process.wait()
        await wait_group_gone(self.process.pid)
        shutil.rmtree(self._user_data_dir, ignore_errors=True)


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def wait_group_gone(pgid: int, timeout: float = 5.0) -> bool:
    """Renderers and the zygote outlive the main process by a few milliseconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        await asyncio.sleep(0.02)
    return False


async def launch_floor(executable: str = "", timeout: float = 30.0) -> FloorBrowser:
    """Chromium with the service's flags, in its own process group, connected over CDP."""
    path = launcher.find_executable(executable)
    user_data_dir = tempfile.mkdtemp(prefix="screenshot-bench-floor-")
    flags = [*launcher.BASE_FLAGS, f"--user-data-dir={user_data_dir}"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")
    process = await asyncio.create_subprocess_exec(
        path, *flags, "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    session: aiohttp.ClientSession | None = None
    try:
        endpoint = await asyncio.wait_for(_endpoint(process), timeout)
        asyncio.create_task(launcher.drain_stderr(process))  # noqa: RUF006 - ends with the process
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(endpoint, max_msg_size=0, autoping=False)
        return FloorBrowser(process, session, CdpConnection(ws), user_data_dir)
    except BaseException:
        if session is not None:
            await session.close()
        kill_group(process.pid)
        await process.wait()
        shutil.rmtree(user_data_dir, ignore_errors=True)
        raise


@contextlib.asynccontextmanager
async def floor_browser(executable: str = "") -> AsyncIterator[FloorBrowser]:
    browser = await launch_floor(executable)
    try:
        yield browser
    finally:
        await browser.close()


async def _endpoint(process: asyncio.subprocess.Process) -> str:
    try:
        return await launcher.read_endpoint(process)
    except EOFError as exc:
        raise CdpError(str(exc)) from None
