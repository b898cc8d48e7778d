"""Start and stop one Chromium process that pyppeteer then drives.

We start Chromium ourselves instead of ``pyppeteer.launch`` because the latter
polls the DevTools endpoint with blocking urllib calls (stalling the event loop
during a relaunch), may download a browser, and leaves child processes behind
when it is killed.  Here Chromium runs in its own process group, talks DevTools
over a pipe pair (pipe.py: no port for anyone else to connect to), and is
killed as a group when it will not close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass, field

from . import pipe
from .chromium_child import child_setup, nice_autogroup, niced
from .chromium_flags import BASE_FLAGS, headless_flag, sandbox_flags
from .driver import BrowserDriver
from .driver_errors import DriverError
from .executable import BrowserLaunchError

log = logging.getLogger("screenshot_service.browser")

_ENDPOINT = re.compile(rb"DevTools listening on (ws://\S+)")


@dataclass(eq=False)
class ChromiumProcess:
    """A running Chromium, its process group and the driver connected to it."""

    process: asyncio.subprocess.Process
    driver: BrowserDriver
    user_data_dir: str
    _stderr_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def close(self, timeout: float = 5.0) -> None:
        """Ask politely, then kill the whole process group; always remove the profile.

        Bounded: a hung browser costs ``timeout`` for the polite part, then SIGKILL.
        """
        try:
            if self.running:
                await self.driver.close(timeout)
                try:
                    await asyncio.wait_for(self.process.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            self.kill()  # the browser if it would not go, and every straggler of the group
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.process.wait(), timeout)
            await self._wait_group_gone()
            await self.driver.close(0.5)  # the DevTools socket, if the polite close never ran
            if self._stderr_task:
                self._stderr_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._stderr_task
            shutil.rmtree(self.user_data_dir, ignore_errors=True)

    async def _wait_group_gone(self, timeout: float = 3.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            if not _group_runs(self.process.pid):
                return  # zombies only: dead, holding nothing, left for their init to reap
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


async def launch(
    executable: str,
    extra_flags: tuple[str, ...] = (),
    timeout: float = 30.0,
    nice: int = 0,
    session_nice: int = 0,
) -> ChromiumProcess:
    """Start Chromium and connect to it.  ``nice`` lowers the CPU priority of every thread it
    runs; ``session_nice`` only that of its session as a whole, where the kernel groups CPU
    time by session (autogroup), leaving Chromium's ranking of its own threads intact."""
    began = asyncio.get_running_loop().time()
    user_data_dir = tempfile.mkdtemp(prefix="screenshot-chromium-")
    flags = [headless_flag(executable), *BASE_FLAGS, pipe.FLAG, *extra_flags, f"--user-data-dir={user_data_dir}"]
    flags += sandbox_flags(os.geteuid())
    commands_theirs, commands_ours = os.pipe()
    events_ours, events_theirs = os.pipe()
    events, commands = os.fdopen(events_ours, "rb", buffering=0), os.fdopen(commands_ours, "wb", buffering=0)
    try:
        process = await asyncio.create_subprocess_exec(
            *niced(pipe.with_pipes_at_3_and_4([executable, *flags, "about:blank"]), nice),
            stdin=commands_theirs,
            stdout=events_theirs,
            stderr=asyncio.subprocess.PIPE,
            # Its own session and process group: one killpg ends every child, and where the
            # kernel groups CPU time by session (autogroup) this process keeps its fair share
            # against Chromium's many threads, so answers and 503s never wait behind rendering.
            start_new_session=True,
            preexec_fn=child_setup,
        )
    except BaseException:
        events.close()
        commands.close()
        raise
    finally:
        os.close(commands_theirs)
        os.close(events_theirs)
    if max(nice, session_nice) > 0:
        nice_autogroup(process.pid, max(nice, session_nice))
    try:
        loop = asyncio.get_running_loop()
        driver = await BrowserDriver.connect_pipe(events, commands, max(1.0, timeout - (loop.time() - began)))
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        shutil.rmtree(user_data_dir, ignore_errors=True)
        if isinstance(exc, (asyncio.TimeoutError, EOFError, OSError, DriverError)):
            raise BrowserLaunchError(f"Chromium ({executable}) did not start: {exc!r}") from exc
        raise
    chromium = ChromiumProcess(process=process, driver=driver, user_data_dir=user_data_dir)
    chromium._stderr_task = asyncio.create_task(drain_stderr(process))
    log.info("chromium started pid=%s", process.pid)
    return chromium


async def read_endpoint(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    while True:
        line = await process.stderr.readline()
        if not line:
            raise EOFError("Chromium exited before reporting its DevTools endpoint")
        match = _ENDPOINT.search(line)
        if match:
            return match.group(1).decode()


async def drain_stderr(process: asyncio.subprocess.Process) -> None:
    """Keep reading Chromium's stderr so a full pipe can never block it."""
    assert process.stderr is not None
    with contextlib.suppress(Exception):
        while await process.stderr.read(65536):
            pass


def _group_runs(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still alive (not a zombie).  The browser's helpers,
    orphaned when it died, are reaped by PID 1, which some inits (a VM's, a container's without
    tini) do only seconds later: a group of zombies holds no memory, descriptor or socket."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust killpg alone
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
