"""GET /: the API Tester, one self-contained HTML page shipped as package data.

The page loads nothing from anywhere else (no CDN, no web fonts), so a strict
Content-Security-Policy costs nothing; images may come from any http(s) origin
because a configured ``public_url`` or S3 bucket serves the captures.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the captured URL never leaks to image hosts
    "Cache-Control": "no-cache",
}


def install_tester(app: web.Application) -> None:
    """Route GET / to the page (idempotent); read it now so a broken install fails at start-up."""
    if any(resource.canonical == "/" for resource in app.router.resources()):
        return
    page = resources.files("screenshot_service.api").joinpath("tester/index.html").read_bytes()

    async def tester_page(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=HEADERS)

    app.router.add_get("/", tester_page)
