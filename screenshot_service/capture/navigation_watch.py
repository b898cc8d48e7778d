"""Notice when the page's main document is the egress proxy's answer (or a network error), not the target.

The up-front URL check cannot see a redirect or a navigation that the page,
its ``html`` or the caller's ``js`` starts, nor whether an allowed host answers
at all; the proxy finds out.  For plain http the browser then shows the proxy's
own error page, marked ``X-Screenshot-Egress: refused`` or ``unreachable``; for
https the tunnel fails, and the capture's proxy channel records which failure
it was (egress_findings.py: this capture's records only).  Either way this
watch turns it into 400 ``blocked_target`` or 502 ``target_unreachable``
(refunded like every failure) instead of a screenshot of an error page; a
failure of the capture's upstream proxy (egress/chain.py) is 502 ``proxy_error``.

A navigation the page asked for is judged once it is answered: ``settle``
waits for it (DevTools reports the request before the script that made it
returns), so the verdict does not depend on how fast the proxy was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..browser.driver_errors import DriverError
from ..egress.chain import BLOCKED as BLOCKED_PROXY
from ..egress.http1 import EGRESS_HEADER, PROXY, REFUSED, UNREACHABLE
from ..egress.urls import host_of
from ..errors import ApiError, BlockedTarget, ProxyError, TargetUnreachable
from ..faults import LayerError

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver
    from ..egress.chain import ProxyFailure
    from .egress_findings import EgressFindings

log = logging.getLogger("screenshot_service.capture")

# Chromium's net errors that mean "the target could not be reached".
UNREACHABLE_ERRORS = (
    "ERR_NAME_NOT_RESOLVED",
    "ERR_NAME_RESOLUTION_FAILED",
    "ERR_CONNECTION_REFUSED",
    "ERR_CONNECTION_RESET",
    "ERR_CONNECTION_CLOSED",
    "ERR_CONNECTION_FAILED",
    "ERR_ADDRESS_UNREACHABLE",
    "ERR_EMPTY_RESPONSE",
    "ERR_SSL_PROTOCOL_ERROR",
    "ERR_CERT_",
    "ERR_INTERNET_DISCONNECTED",
    "ERR_TIMED_OUT",
    "ERR_CONNECTION_TIMED_OUT",
)
# The browser itself would not go there: a block list matched, or a port it never connects to.
BLOCKED_ERRORS = ("ERR_BLOCKED_BY_CLIENT", "ERR_ACCESS_DENIED", "ERR_UNSAFE_PORT")
# The proxy answered a CONNECT (https, wss) with an error: refused or unreachable, its channel knows.
TUNNEL_ERRORS = ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED")
SETTLE_BOUND = 12.0  # s: a requested navigation is answered by then (the proxy gives up connecting at 10 s)


def classify(error_text: str, host: str, egress: EgressFindings | None) -> str | None:
    """REFUSED, UNREACHABLE or None (no verdict: e.g. an aborted navigation) for a net error."""
    if any(code in error_text for code in TUNNEL_ERRORS):
        if egress is not None and any(f.target == host for f in egress.proxy_failures):
            return PROXY
        unreachable = egress is not None and any(h == host for h, _ in egress.unreachable)
        refused = egress is not None and any(h == host for h, _ in egress.refused)
        return UNREACHABLE if unreachable and not refused else REFUSED
    if any(code in error_text for code in BLOCKED_ERRORS):
        return REFUSED
    if any(code in error_text for code in UNREACHABLE_ERRORS):
        return UNREACHABLE
    return None


def proxy_failure(failed: ProxyFailure) -> ApiError:
    """The caller's own proxy refused by the egress policy is the caller's 400; anything about an
    operator's pool is the operator's 502, naming the pool."""
    if failed.kind == BLOCKED_PROXY and failed.pool is None:
        return BlockedTarget(failed.message, details={"field": "proxy"})
    details: dict[str, object] = {"proxy_pool": failed.pool} if failed.pool is not None else {}
    if failed.status is not None:
        details["status"] = failed.status
    return ProxyError(failed.message, details=details or None)


def failure(verdict: str, host: str, reason: str) -> ApiError:
    if verdict == REFUSED:
        return BlockedTarget(f"the page navigated to {host}, which the egress policy does not allow",
                             details={"host": host})
    return TargetUnreachable(f"could not reach {host}: {reason}", details={"host": host})


class MainFrameWatch:
    """Watches the main frame's navigations (DevTools Page and Network events) for a failed document."""

    def __init__(self, page: PageDriver, egress: EgressFindings | None = None) -> None:
        self.page, self.egress = page, egress
        self.failure: ApiError | None = None  # the first failed main document, if any
        self._documents: dict[str, str] = {}  # requestId -> URL of the main frame's document requests
        self._answered = asyncio.Event()  # no navigation of the main frame waits for its answer
        self._answered.set()
        page.on("Page.frameRequestedNavigation", self._on_requested)
        page.on("Network.requestWillBeSent", self._on_request)
        page.on("Network.responseReceived", self._on_response)
        page.on("Network.loadingFailed", self._on_failed)
        for event in ("Page.frameNavigated", "Page.navigatedWithinDocument", "Page.frameStoppedLoading"):
            page.on(event, self._on_settled)

    def _main_frame(self, event: dict[str, Any]) -> bool:
        frame = event.get("frameId") or (event.get("frame") or {}).get("id")
        return bool(frame) and frame == self.page.main_frame_id

    def _on_requested(self, event: dict[str, Any]) -> None:
        if self._main_frame(event) and event.get("disposition", "currentTab") == "currentTab":
            self._answered.clear()

    def _on_request(self, event: dict[str, Any]) -> None:
        if event.get("type") == "Document" and self._main_frame(event):
            self._documents[event["requestId"]] = (event.get("request") or {}).get("url", "")
            self._answered.clear()

    def _on_response(self, event: dict[str, Any]) -> None:
        if event.get("requestId") not in self._documents:
            return
        response = event.get("response") or {}
        headers = response.get("headers") or {}
        verdict = next((str(v) for k, v in headers.items() if str(k).lower() == EGRESS_HEADER.lower()), None)
        if verdict in (REFUSED, UNREACHABLE, PROXY):
            self._fail(verdict, response.get("url") or self._documents[event["requestId"]], "")
        self._answered.set()

    def _on_failed(self, event: dict[str, Any]) -> None:
        url = self._documents.get(event.get("requestId", ""))
        if url is None:
            return
        error_text = str(event.get("errorText", ""))
        verdict = classify(error_text, host_of(url) or "?", self.egress)
        if verdict is not None and not event.get("canceled"):
            self._fail(verdict, url, error_text)
        self._answered.set()

    def _on_settled(self, event: dict[str, Any]) -> None:
        if self._main_frame(event):
            self._answered.set()

    def _fail(self, verdict: str, url: str, error_text: str) -> None:
        if self.failure is not None:
            return  # the first failure explains what followed
        host = host_of(url) or "?"
        failed = [f for f in self.egress.proxy_failures if f.target == host] if self.egress is not None else []
        if verdict == PROXY and failed:
            self.failure = proxy_failure(failed[0])
            return
        records = self.egress.unreachable if self.egress is not None else []
        reason = next((r for h, r in records if h == host), error_text.removeprefix("net::") or "no answer")
        self.failure = failure(verdict, host, reason)

    async def settle(self) -> None:
        """Until a main-frame navigation the page (or the caller's js) started has its answer; bounded."""
        try:
            await asyncio.wait_for(self._answered.wait(), SETTLE_BOUND)
        except TimeoutError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the capture's deadline, not our bound
            log.info("a main-frame navigation was still unanswered after %g s", SETTLE_BOUND)

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure

    @contextlib.contextmanager
    def judged(self) -> Iterator[None]:
        """The main document's failure at the end of the block, or instead of an error inside it
        (a script whose document went away, a renderer the navigation tore down)."""
        try:
            yield
        except (ApiError, LayerError, DriverError):
            self.raise_if_failed()
            raise
        self.raise_if_failed()
