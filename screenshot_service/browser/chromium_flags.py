"""Chromium's command line: the flags every browser the service (or its benchmark) starts gets."""

from __future__ import annotations

import logging

from .executable import is_headless_shell

log = logging.getLogger("screenshot_service.browser")

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
# The benchmark floor's DevTools websocket (bench/floor.py); the service talks over a pipe (pipe.FLAG).
DEVTOOLS_PORT_FLAGS = ("--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1")



def headless_flag(executable: str) -> str:
    """The headless shell is headless by nature; the full binary needs the new headless mode."""
    return "--headless" if is_headless_shell(executable) else "--headless=new"


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
