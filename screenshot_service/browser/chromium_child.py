"""How the Chromium child process is set up: its CPU priority and its death with this process
(the DevTools pipe pair at the descriptors Chromium expects: pipe.py)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal

log = logging.getLogger("screenshot_service.browser")


def niced(argv: list[str], nice: int) -> list[str]:
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


def child_setup() -> None:
    """Runs in the child before exec: the kernel SIGKILLs Chromium if this process dies, even by
    SIGKILL, so no browser outlives the service (its helpers exit when the browser goes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def nice_autogroup(pid: int, nice: int) -> None:
    """With autogroup scheduling, CPU is shared between sessions first (thread nice only ranks
    threads inside one): this ranks Chromium's whole session against this process's."""
    with contextlib.suppress(OSError):  # no autogroup (e.g. in a container's cgroup): thread nice rules
        with open(f"/proc/{pid}/autogroup", "w", encoding="ascii") as group:
            group.write(str(nice))
