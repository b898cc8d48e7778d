"""Which Chromium binaries a run used, with their versions, for results.json.

The service's binary is read from ``/proc/PID/exe`` of the browsers it started, not
from its config: what ran is what counts (auto-detection, wrappers resolved).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Any

from ..browser.executable import is_headless_shell
from . import procstats


def version(path: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        return out or None
    return None


def describe(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    return {"path": path, "version": version(path), "headless_shell": is_headless_shell(path)}


def launched_by(pid: int) -> list[str]:
    """The executables of the processes ``pid`` started itself (a service: its browsers)."""
    found: set[str] = set()
    for child in procstats.children(pid):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{child}/exe"))
    return sorted(found)


def service_binary(pid: int | None) -> dict[str, Any] | None:
    """The Chromium a started service runs (None for ``--url``: not ours to look into)."""
    if not pid:
        return None
    paths = [p for p in launched_by(pid) if "chrom" in os.path.basename(p) or "headless" in os.path.basename(p)]
    if not paths:
        return None
    described = describe(paths[0])
    if described is not None and len(paths) > 1:
        described["also"] = paths[1:]
    return described
