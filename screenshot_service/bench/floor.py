"""The floor: the same captures through a bare DevTools-protocol loop on one Chromium.

No HTTP, no storage, no pyppeteer (``cdp.CdpConnection``).  Two ways to time it:

* **cold** (``capture``): everything on the critical path — a fresh browser
  context, a target, the attach, navigation to the load event, the screenshot
  and disposing the context.  A pool that prepares contexts ahead of time
  should beat it, at least at saturation, where both pay the same CPU.
* **warm** (``open_tab`` before the clock, ``shoot`` on it, ``close_tab``
  after): only navigation to the load event and the screenshot.  That is all a
  request to a service with a ready context has to wait for, so it is the bar
  for single-request latency.

Chromium gets the service's own command line (browser/chromium_flags.py: the
same flags and headless flag for the same binary), so the comparison is about the code,
not the flags; only the DevTools transport differs (a websocket here, the
service's pipe pair there: browser/pipe.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..browser import launcher
from ..browser.chromium_flags import BASE_FLAGS, DEVTOOLS_PORT_FLAGS, headless_flag
from ..browser.executable import find_executable
from .cdp import CdpConnection, CdpError
from .spec import CaptureSpec

__all__ = ["CdpError", "FloorBrowser", "Tab", "floor_browser", "launch_floor"]


# What the service prints with by default: Letter, 0.4 in margins, backgrounds, a CSS page size wins.
PRINT_PARAMS = {"printBackground": True, "preferCSSPageSize": True, "paperWidth": 8.5, "paperHeight": 11.0,
                "marginTop": 0.4, "marginBottom": 0.4, "marginLeft": 0.4, "marginRight": 0.4,
                "generateTaggedPDF": False, "generateDocumentOutline": False}


@dataclass(frozen=True)
class Tab:
    """A browser context with one attached blank page, sized for a capture."""

    context: str
    session: str


def screenshot_params(spec: CaptureSpec, content_height: float | None) -> dict[str, Any]:
    """``Page.captureScreenshot`` parameters for ``spec`` (full page: up to ``max_height``)."""
    height = float(spec.height)
    if spec.full_page and content_height is not None:
        height = float(max(1, min(math.ceil(content_height), spec.max_height)))
    return {
        "format": "png", "fromSurface": True, "captureBeyondViewport": spec.full_page,
        "clip": {"x": 0, "y": 0, "width": float(spec.width), "height": height, "scale": 1},
    }


class FloorBrowser:
    """One Chromium and one CDP connection; every method may be called concurrently."""

    def __init__(self, process: asyncio.subprocess.Process, session: aiohttp.ClientSession,
                 cdp: CdpConnection, user_data_dir: str, executable: str) -> None:
        self.process = process
        self._session = session
        self.cdp = cdp
        self._user_data_dir = user_data_dir
        self.executable = executable

    @property
    def pid(self) -> int:
        return self.process.pid

    async def open_tab(self, spec: CaptureSpec, ready: bool = False) -> Tab:
        """A fresh context and page; with ``ready``, also wait until its renderer answers, as a
        pool's warm context would have done long before a request arrives."""
        cdp = self.cdp
        context = (await cdp.send("Target.createBrowserContext", {"disposeOnDetach": True}))["browserContextId"]
        try:
            target = (await cdp.send("Target.createTarget",
                                     {"url": "about:blank", "browserContextId": context}))["targetId"]
            session = (await cdp.send("Target.attachToTarget",
                                      {"targetId": target, "flatten": True}))["sessionId"]
            await cdp.send("Page.enable", session=session)
            await cdp.send("Emulation.setDeviceMetricsOverride",
                           {"width": spec.width, "height": spec.height, "deviceScaleFactor": 1,
                            "mobile": False}, session=session)
            if ready:
                await cdp.send("Runtime.evaluate", {"expression": "0"}, session=session)
        except BaseException:
            await self._dispose(context)
            raise
        return Tab(context=context, session=session)

    async def shoot(self, tab: Tab, url: str, spec: CaptureSpec) -> bytes:
        """Navigate ``tab`` to ``url``, wait for the load event, take the screenshot."""
        cdp, session = self.cdp, tab.session
        loaded = cdp.wait_for("Page.loadEventFired", session)
        navigation = await cdp.send("Page.navigate", {"url": url}, session=session)
        if navigation.get("errorText"):
            loaded.cancel()
            raise CdpError(f"navigation failed: {navigation['errorText']}")
        await loaded
        if spec.format == "pdf":
            printed = await cdp.send("Page.printToPDF", PRINT_PARAMS, session=session)
            return base64.b64decode(printed["data"])
        content_height = None
        if spec.full_page:
            metrics = await cdp.send("Page.getLayoutMetrics", session=session)
            content_height = (metrics.get("cssContentSize") or metrics["contentSize"])["height"]
        shot = await cdp.send("Page.captureScreenshot", screenshot_params(spec, content_height), session=session)
        return base64.b64decode(shot["data"])

    async def close_tab(self, tab: Tab) -> None:
        self.cdp.forget(tab.session)
        await self._dispose(tab.context)

    async def capture(self, url: str, spec: CaptureSpec) -> bytes:
        """A cold capture: context, page, navigation, screenshot and disposal, all of it."""
        tab = await self.open_tab(spec)
        try:
            return await self.shoot(tab, url, spec)
        finally:
            await self.close_tab(tab)

    async def _dispose(self, context: str) -> None:
        with contextlib.suppress(CdpError):
            await self.cdp.send("Target.disposeBrowserContext", {"browserContextId": context})

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
    """Chromium with the service's flags, in its own process group, connected over CDP.

    ``executable`` empty: what the service would pick on its own, i.e. the fastest binary
    installed (the headless shell where there is one)."""
    path = find_executable(executable)
    user_data_dir = tempfile.mkdtemp(prefix="screenshot-bench-floor-")
    flags = [headless_flag(path), *BASE_FLAGS, *DEVTOOLS_PORT_FLAGS, f"--user-data-dir={user_data_dir}"]
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
        return FloorBrowser(process, session, CdpConnection(ws), user_data_dir, path)
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
