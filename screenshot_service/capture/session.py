"""Everything one capture knows about its page, in one object made per lease and passed down.

A ``CaptureSession`` is made where a capture gets its page (``CaptureService``
after leasing a context) and handed to every step of render.py, checks.py,
ready.py and fullpage.py: whether the page was prepared, its network, its main
document and the warnings gathered, the navigation watches, and what the egress
proxy refused.  Nothing of it lives in a module-level registry keyed by page,
so what a capture finds is its own whatever else ran on that page before, and
no step depends on another having run first to install it.

Every watch subscribes to the page's DevTools events when the session is made,
before ``prepare``: the first request of the capture is seen.  Subscribing sends
nothing to the browser: a session costs no round trip.  The subscriptions last
as long as the page, which the pool disposes of with its context after the lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .documents import DocumentTracker
from .egress_findings import EgressFindings
from .facts import PageWatch
from .navigation_watch import MainFrameWatch
from .network import NetworkTracker

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from ..egress.channel import ProxyChannel


class CaptureSession:
    """One capture's page and what it has learnt about it so far."""

    def __init__(self, page: PageDriver, channel: ProxyChannel | None = None) -> None:
        self.page = page
        self.egress = EgressFindings(channel)  # what the proxy refused or could not reach
        self.navigation = MainFrameWatch(page, self.egress)  # a main document the proxy failed
        self.network = NetworkTracker(page)  # requests in flight, blocked by Chromium, downloads
        self.document = PageWatch(page)  # the main document's facts, and the warnings
        self.documents = DocumentTracker(page)  # navigations the page starts itself (loading.py)
        self.prepared = False  # render.prepare has run: emulation, headers, blocking are set
        self.ran_js = False  # the caller's js ran: once per capture, whatever document the page goes to next

    @property
    def blocked_requests(self) -> int:
        """Requests refused during this capture: by the proxy, and by Chromium's block lists."""
        return len(self.egress.refused) + self.network.blocked
