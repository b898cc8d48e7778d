"""Signed links: the canonical query text, its HMAC-SHA256 signature, and the link (SPEC §3).

A signed link is a ``GET /v1/screenshot`` URL that carries ``key_id`` and
``signature`` instead of an API key, so it can sit in an ``<img src>`` on a
public page.  ``signature`` = lowercase hex HMAC-SHA256(signing_secret, canonical)
where ``canonical`` is built from every query parameter except ``signature``
(``key_id`` and ``expires`` included):

1. each name and each value is percent-encoded as RFC 3986 says: every byte of
   its UTF-8 form except the unreserved ``A-Z a-z 0-9 - . _ ~`` becomes ``%XX``
   (upper-case hex; a space is ``%20``, never ``+``);
2. the pairs are sorted by encoded name, then by encoded value -- plain ASCII
   order, so every language (Python, JavaScript, the shell) sorts alike;
3. each pair is written ``name=value`` and the pairs are joined with ``&``.

The link :func:`signed_url` builds *is* that canonical text plus
``&signature=…``, so what the server decodes and re-encodes is what was signed.

This is the one implementation: the server verifies with :func:`sign` from here
(``screenshot_service.signing.verify``, constant-time), and its CLI (``keys sign``)
builds links with :func:`signed_url`.  Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

SIGNATURE = "signature"
KEY_ID = "key_id"
EXPIRES = "expires"
# The names a signed link adds to the capture options.
LINK_PARAMETERS = (KEY_ID, EXPIRES, SIGNATURE)

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def _encode(text: str) -> str:
    # quote() with no safe characters leaves exactly RFC 3986's unreserved set as it is.
    return quote(text, safe="", encoding="utf-8", errors="strict")


def canonical_query(params: Params) -> str:
    """The text that is signed: every parameter but ``signature``, encoded, sorted, joined."""
    encoded = sorted((_encode(name), _encode(value)) for name, value in _pairs(params) if name != SIGNATURE)
    return "&".join(f"{name}={value}" for name, value in encoded)


def sign(secret: str, params: Params) -> str:
    """Lowercase hex HMAC-SHA256 of ``canonical_query(params)`` under ``secret`` (its UTF-8 bytes)."""
    message = canonical_query(params).encode("ascii")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def query_value(value: Any) -> str:
    """An option's value as query-string text: the spelling the API accepts in a query
    (booleans ``true``/``false``, lists of plain values comma-separated, objects and lists of
    objects, such as ``actions``, as JSON text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and any(isinstance(item, dict | list | tuple) for item in value):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list | tuple):
        return ",".join(query_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def signed_url(
    base_url: str,
    key_id: str,
    signing_secret: str,
    url: str,
    expires_in: float | None = None,
    **options: Any,
) -> str:
    """A signed ``/v1/screenshot`` link for ``url`` with ``options``; no network call.

    ``expires_in`` (seconds from now) adds ``expires``: past it the link answers 401
    ``signature_expired``.  Options set to None are left out; nothing is validated here
    (the server is the one judge of options).
    """
    params = [("url", url), (KEY_ID, key_id)]
    params += [(name, query_value(value)) for name, value in options.items() if value is not None]
    if expires_in is not None:
        params.append((EXPIRES, str(int(time.time() + expires_in))))
    return f"{base_url.rstrip('/')}/v1/screenshot?{canonical_query(params)}&{SIGNATURE}={sign(signing_secret, params)}"
