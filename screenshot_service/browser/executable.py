"""Which Chromium binary the service runs: the configured one, else the first one installed."""

from __future__ import annotations

import os
import shutil


class BrowserLaunchError(RuntimeError):
    pass


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
