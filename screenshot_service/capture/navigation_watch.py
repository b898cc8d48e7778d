"""Notice when the page's main document was refused by the egress proxy.

The up-front URL check cannot see a redirect or a script navigation to a
forbidden host; the proxy refuses those.  For plain http the browser then shows
the proxy's 403 page (marked ``X-Egress-Blocked``), for https the tunnel fails.
Either way this watch turns it into 400 ``blocked_target`` instead of a
screenshot of an error page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..browser.driver import PageDriver
from ..errors import BlockedTarget

# Chromium's errors for a proxy that refused a CONNECT or answered with an error.
_PROXY_REFUSALS = ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED", "ERR_HTTP_RESPONSE_CODE_FAILURE")


class MainFrameWatch:
    """Watches the main frame's document requests (DevTools Network events) for a proxy refusal."""

    def __init__(self, page: PageDriver) -> None:
        self.page = page
        self.blocked_host: str | None = None
        self._documents: dict[str, str] = {}  # requestId -> URL of the main frame's document requests
        page.on("Network.requestWillBeSent", self._on_request)
        page.on("Network.responseReceived", self._on_response)
        page.on("Network.loadingFailed", self._on_failed)

    def _is_main_document(self, event: dict[str, Any]) -> bool:
        return event.get("type") == "Document" and event.get("frameId") == self.page.main_frame_id

    def _on_request(self, event: dict[str, Any]) -> None:
        if self._is_main_document(event):
            self._documents[event["requestId"]] = (event.get("request") or {}).get("url", "")

    def _on_response(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        headers = {str(k).lower() for k in (response.get("headers") or {})}
        if self._is_main_document(event) and "x-egress-blocked" in headers:
            self.blocked_host = urlsplit(response.get("url", "")).hostname or "?"

    def _on_failed(self, event: dict[str, Any]) -> None:
        url = self._documents.get(event.get("requestId", ""))
        failure = event.get("errorText", "")
        if url is not None and any(code in failure for code in _PROXY_REFUSALS):
            self.blocked_host = urlsplit(url).hostname or "?"

    def raise_if_blocked(self) -> None:
        if self.blocked_host is not None:
            raise BlockedTarget(
                f"the page navigated to {self.blocked_host}, which the egress policy does not allow",
                details={"host": self.blocked_host},
            )
