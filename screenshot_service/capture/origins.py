"""Origins as Chromium writes them (``http://host:port``, the scheme's default port left out)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..egress.urls import DEFAULT_PORTS


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) ``url``; None for any other (opaque ``null``/``://``, about:)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"
