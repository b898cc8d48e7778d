"""Ad, tracker and cookie-banner blocking from lists shipped in the package.

Nothing is fetched at run time: the lists live in ``capture/blocklists/`` and
are read once.  Ads and trackers are blocked by host name, in two layers:

* ``host_blocker(opts)`` is the authoritative one: the egress proxy asks it for
  every request of the capture's browser context (any frame, worker, redirect).
* ``apply_page_blocking(page, opts)`` also hands the same domains to Chromium
  (``Network.setBlockedURLs``), so the page's subresources fail inside the
  browser before any connection is tried, and are counted per page.  Chromium
  applies that list to subresources only, never to navigations (documents of
  the page or its frames): render.py refuses a target URL on a chosen list
  up front, and frames and redirects are left to the proxy.

A list entry blocks that host and every subdomain of it, never a host that
merely ends with the same letters (``notdoubleclick.net`` is not
``doubleclick.net``).  Cookie banners are handled in render.py with the
selector lists exposed here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from .options import CaptureOptions

log = logging.getLogger("screenshot_service.capture")

DOMAIN_LISTS = ("ads", "trackers")


@functools.cache
def _lines(filename: str, comment: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("blocklists", filename).read_text("utf-8")
    stripped = (line.strip() for line in text.splitlines())
    return tuple(line for line in stripped if line and not line.startswith(comment))


@functools.cache
def domains(kind: str) -> frozenset[str]:
    """The bundled ``ads`` or ``trackers`` list."""
    if kind not in DOMAIN_LISTS:
        raise ValueError(f"no blocklist {kind!r}")
    return frozenset(normalise_host(line) for line in _lines(f"{kind}.txt", "#"))


def normalise_host(host: str) -> str:
    # Hosts arrive as the proxy or a URL spells them: any case, maybe a trailing dot or [v6].
    return host.strip().strip("[]").rstrip(".").lower()


def matches(host: str, blocked: frozenset[str]) -> bool:
    """``host`` or one of its parent domains is in ``blocked``."""
    labels = normalise_host(host).split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


def selected_domains(opts: CaptureOptions) -> frozenset[str]:
    chosen = [domains(kind) for kind, on in (("ads", opts.block_ads), ("trackers", opts.block_trackers)) if on]
    return frozenset().union(*chosen)


def host_blocker(opts: CaptureOptions) -> Callable[[str], bool] | None:
    """What the egress proxy asks per request ("is this host blocked?"); None when nothing is."""
    blocked = selected_domains(opts)
    if not blocked:
        return None
    return functools.partial(matches, blocked=blocked)


def url_patterns(blocked: Iterable[str]) -> list[dict[str, Any]]:
    """URLPattern entries for ``Network.setBlockedURLs``: the host itself and every subdomain, any port.

    URLPattern matches the host component alone, unlike the older ``urls``
    wildcards, which match the whole URL string (a query mentioning an ad host
    would block an innocent page) and miss URLs with an explicit port.
    """
    patterns = []
    for domain in sorted(blocked):
        patterns.append({"urlPattern": f"*://{domain}:*/*", "block": True})
        patterns.append({"urlPattern": f"*://*.{domain}:*/*", "block": True})
    return patterns


async def apply_page_blocking(page: PageDriver, opts: CaptureOptions) -> None:
    """Block the selected lists inside Chromium for this page (call before navigation)."""
    blocked = selected_domains(opts)
    if not blocked:
        return
    await page.send("Network.setBlockedURLs", {"urlPatterns": url_patterns(blocked)})


@functools.cache
def cookie_banner_css() -> str:
    """A style sheet hiding common consent managers' banners and overlays, and undoing their scroll locks."""
    hide = ",\n".join(_lines("cookie_banners.txt", "!"))
    return (
        f"{hide} {{ display: none !important; }}\n"
        # Some consent managers lock scrolling with a class while their dialog is open;
        # a full-page capture of a locked page would stop at the first screen.
        ".didomi-popup-open, .sp-message-open, .qc-cmp-showing "
        "{ overflow: auto !important; }\n"
    )


def cookie_accept_selectors() -> tuple[str, ...]:
    """Buttons clicked, when visible, so the site itself dismisses its banner."""
    return _lines("cookie_accept.txt", "!")
