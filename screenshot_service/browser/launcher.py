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
import ctypes
import functools
import logging
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass, field

from . import pipe
from .driver import BrowserDriver, DriverError

log = logging.getLogger("screenshot_service.browser")

# Auto-detection order. The headless shell first: it is Chromium's renderer and
# DevTools without the browser UI layer, and serves about 4x the captures per
# second of the full binary on the same machine, with the same pixels (README,
# Performance). Debian's /usr/bin wrappers are shell scripts (the headless
# shell's does not even exec), so the real binaries under /usr/lib/chromium
# come before them: signals and pids must reach the browser itself.
HEADLESS_SHELL_CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "chromium-headless-shell",
    "headless_shell",
)
FULL_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
CANDIDATES = HEADLESS_SHELL_CANDIDATES + FULL_CANDIDATES
# Wrapper scripts on PATH and the binary each of them runs.
_WRAPPED = {
    "/usr/bin/chromium-headless-shell": "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium": "/usr/lib/chromium/chromium",
}

# Server flags: no GPU, nothing that phones home (there may be no network at all),
# no QUIC (the egress proxy only sees TCP), WebRTC kept to proxied UDP, hidden
# scrollbars for clean shots.  The sandbox: see sandbox_flags.
BASE_FLAGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-breakpad",
    "--disable-component-update",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-extensions",
    "--disable-sync",
    "--disable-quic",
    "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider,"
    "InterestFeedContentSuggestions,CalculateNativeWinOcclusion,AcceptCHFrame,HttpsUpgrades",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--mute-audio",
    "--font-render-hinting=none",
)
# How the service talks to its browser (pipe.py); the benchmark's floor uses a websocket instead.
DEVTOOLS_PORT_FLAGS = ("--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1")

_ENDPOINT = re.compile(rb"DevTools listening on (ws://\S+)")


class BrowserLaunchError(RuntimeError):
    pass


def find_executable(configured: str = "") -> str:
    """The configured Chromium, or the first of CANDIDATES found (wrapper scripts resolved)."""
    if configured:
        path = shutil.which(configured) or configured
        if not _is_executable(path):
            raise BrowserLaunchError(f"browser.executable = {configured!r} is not an executable file")
        return _unwrap(path)
    found = _first_of(CANDIDATES)
    if found is None:
        raise BrowserLaunchError(
            "no Chromium found (looked for " + ", ".join(CANDIDATES) + "); install it with: "
            "apt-get install -y chromium-headless-shell chromium fonts-liberation fonts-noto-color-emoji"
        )
    return found


def find_full_chromium() -> str | None:
    """The full (headful-capable) Chromium binary, if one is installed: the smoke tests' and
    the benchmark's second binary."""
    return _first_of(FULL_CANDIDATES)


def is_headless_shell(executable: str) -> bool:
    return "headless" in os.path.basename(executable)


def _first_of(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and _is_executable(path):
            return _unwrap(path)
    return None


def _unwrap(path: str) -> str:
    real = _WRAPPED.get(os.path.realpath(path)) or _WRAPPED.get(path)
    return real if real and _is_executable(real) else path


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


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
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _niced(argv: list[str], nice: int) -> list[str]:
    """``argv`` run ``nice`` steps below this process, with every process and thread it starts."""
    if nice <= 0:
        return argv
    tool = shutil.which("nice")
    if tool is None:
        log.warning("no `nice` on PATH: Chromium runs at this process's CPU priority")
        return argv
    prefix = [tool, "-n", str(nice)]
    if os.geteuid() == 0:
        # As root, Chromium sets its threads' priorities itself (0, and -8 for display and
        # IO threads), undoing ours; without CAP_SYS_NICE it cannot go below what it inherits.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            log.warning("no `setpriv` on PATH: Chromium, run as root, may raise its own CPU priority")
        else:
            prefix += [setpriv, "--bounding-set", "-sys_nice", "--"]
    return [*prefix, *argv]


_PR_SET_PDEATHSIG = 1


def _die_with_this_process() -> None:
    """Runs in the child before exec: the kernel SIGKILLs Chromium if this process dies, even by
    SIGKILL, so no browser outlives the service (its helpers exit when the browser goes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_setup(commands: int, events: int) -> None:
    _die_with_this_process()
    pipe.child_pipes(commands, events)


def _nice_autogroup(pid: int, nice: int) -> None:
    """With autogroup scheduling, CPU is shared between sessions first (thread nice only ranks
    threads inside one): this ranks Chromium's whole session against this process's."""
    with contextlib.suppress(OSError):  # no autogroup (e.g. in a container's cgroup): thread nice rules
        with open(f"/proc/{pid}/autogroup", "w", encoding="ascii") as group:
            group.write(str(nice))


def sandbox_flags(euid: int) -> list[str]:
    """Chromium keeps its sandbox (a renderer compromised by a page stays contained) whenever this
    process is not root; as root Chromium refuses to start with it, so only then is it dropped.
    Run the service as a dedicated user (README, Deployment)."""
    global _warned_root
    if euid == 0:
        if not _warned_root:
            _warned_root = True
            log.warning("running as root: Chromium runs without its sandbox; run as a dedicated user")
        return ["--no-sandbox"]
    return []


_warned_root = False  # said once per process, not at every launch


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
    # The headless shell is headless by nature; the full binary needs the new headless mode.
    headless = "--headless" if is_headless_shell(executable) else "--headless=new"
    flags = [headless, *BASE_FLAGS, pipe.FLAG, *extra_flags, f"--user-data-dir={user_data_dir}"]
    flags += sandbox_flags(os.geteuid())
    # Both pipes made here have fds 3 and 4 open in this process (pipe() takes the lowest free
    # numbers), so the child may keep 3 and 4 (pass_fds), which child_pipes points at its ends.
    commands_theirs, commands_ours = os.pipe()
    events_ours, events_theirs = os.pipe()
    events, commands = os.fdopen(events_ours, "rb", buffering=0), os.fdopen(commands_ours, "wb", buffering=0)
    try:
        process = await asyncio.create_subprocess_exec(
            *_niced([executable, *flags, "about:blank"], nice),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            # Its own session and process group: one killpg ends every child, and where the
            # kernel groups CPU time by session (autogroup) this process keeps its fair share
            # against Chromium's many threads, so answers and 503s never wait behind rendering.
            start_new_session=True,
            pass_fds=(pipe.COMMANDS_FD, pipe.EVENTS_FD, commands_theirs, events_theirs),
            preexec_fn=functools.partial(_child_setup, commands_theirs, events_theirs),
        )
    except BaseException:
        events.close()
        commands.close()
        raise
    finally:
        os.close(commands_theirs)
        os.close(events_theirs)
    if max(nice, session_nice) > 0:
        _nice_autogroup(process.pid, max(nice, session_nice))
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
