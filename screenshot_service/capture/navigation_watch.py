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

from pyppeteer.page import Page

from ..errors import BlockedTarget

# Chromium's errors for a proxy that refused a CONNECT or answered with an error.
_PROXY_REFUSALS = ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED", "ERR_HTTP_RESPONSE_CODE_FAILURE")


class MainFrameWatch:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.blocked_host: str | None = None
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def _is_main_navigation(self, request: Any) -> bool:
        return bool(request.isNavigationRequest()) and request.frame is self.page.mainFrame

    def _on_response(self, response: Any) -> None:
        if self._is_main_navigation(response.request) and response.headers.get("x-egress-blocked"):
            self.blocked_host = urlsplit(response.url).hostname or "?"

    def _on_failed(self, request: Any) -> None:
        failure = (request.failure() or {}).get("errorText", "")
        if self._is_main_navigation(request) and any(code in failure for code in _PROXY_REFUSALS):
            self.blocked_host = urlsplit(request.url).hostname or "?"

    def raise_if_blocked(self) -> None:
        if self.blocked_host is not None:
            raise BlockedTarget(
                f"the page navigated to {self.blocked_host}, which the egress policy does not allow",
                details={"host": self.blocked_host},
            )
