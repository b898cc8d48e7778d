"""The service drives Chromium over a pipe pair (browser/pipe.py), not a DevTools port.

Nothing on the machine can connect to the service's browsers; a browser that
dies fails every call in flight at once, and leaves no descriptor behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from screenshot_service.browser import launcher
from screenshot_service.browser.driver_errors import ConnectionLost
from screenshot_service.browser.executable import find_executable
from screenshot_service.browser.pool import BrowserPool
from tests.conftest import image_of
from tests.site import PAINT_RGB
from tests.test_chaos import listening_inodes, socket_inodes

BOUND = 30.0  # a bound on waits that end at once when all is well


def _tree(root: int) -> set[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


def _argv(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().split(b"\0")


async def test_the_browser_listens_on_no_port_and_captures(make_service: Any, shared_pool: BrowserPool) -> None:
    service = await make_service()
    response = await service.client.get("/v1/screenshot", params={
        "url": service.site.url + "/paint", "api_key": service.key, "response_type": "image"})
    assert response.status == 200, await response.text()
    assert image_of(await response.read()).convert("RGB").getpixel((200, 200)) == PAINT_RGB

    pids = shared_pool.chromium_pids()
    assert pids
    for pid in pids:
        argv = _argv(pid)
        assert b"--remote-debugging-pipe" in argv
        assert not any(arg.startswith(b"--remote-debugging-port") for arg in argv)
        listening = {inode for process in _tree(pid) for inode in socket_inodes(process)} & listening_inodes()
        assert not listening, f"Chromium {pid} listens on TCP sockets {listening}"


def _descriptors() -> int:
    """This process's open descriptors, but /dev/null: the event loop's process spawning opens one
    the first time a child is started after other work, and keeps it for every later spawn (one
    for the process, not one a browser: the chaos tests count descriptors over many relaunches)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") != os.devnull
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return count


async def test_a_killed_browser_fails_calls_in_flight_and_later_ones_at_once() -> None:
    fds_before = _descriptors()
    chromium = await launcher.launch(find_executable())
    try:
        _, page = await chromium.driver.new_context({}, BOUND)
        assert await page.evaluate("() => 6 * 7") == 42
        # A call the page has started on and never answers.
        pending = asyncio.ensure_future(page.evaluate("() => { window.started = true; return new Promise(() => {}); }"))
        async with asyncio.timeout(BOUND):
            while not await page.evaluate("() => window.started === true"):
                pass
        assert not pending.done()
        os.killpg(chromium.pid, signal.SIGKILL)
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(pending, BOUND)  # the driver's own bound (45 s) would say CallTimeout
        assert not chromium.driver.connected
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(page.send("Runtime.evaluate", {"expression": "1"}), BOUND)
    finally:
        await chromium.close()
    assert _descriptors() == fds_before


async def test_an_answer_for_a_caller_that_gave_up_leaves_the_browser_serving() -> None:
    chromium = await launcher.launch(find_executable())
    try:
        _, page = await chromium.driver.new_context({}, BOUND)
        given_up = asyncio.ensure_future(page.evaluate("() => new Promise(resolve => { window.release = resolve; })"))
        async with asyncio.timeout(BOUND):
            while not await page.evaluate("() => typeof window.release === 'function'"):
                pass
        given_up.cancel()  # as a capture's deadline cancels the call it was waiting on
        with pytest.raises(asyncio.CancelledError):
            await given_up
        # The answer to the abandoned call comes now, before this one's: nobody is waiting for it.
        await page.evaluate("() => window.release(1)")
        assert await page.evaluate("() => 6 * 7") == 42
        assert chromium.driver.connected
    finally:
        await chromium.close()
