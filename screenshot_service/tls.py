"""HTTPS for the API server: TLS 1.2 as the floor."""

from __future__ import annotations

import ssl

from .config import ConfigError, ServerConfig


def server_ssl_context(server: ServerConfig) -> ssl.SSLContext | None:
    if not server.tls_cert and not server.tls_key:
        return None
    if not (server.tls_cert and server.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key must be set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"server.tls_cert = {server.tls_cert!r} / server.tls_key = {server.tls_key!r} "
            f"could not be loaded: {exc}"
        ) from None
    return context
