"""Signed links on the server's side: minting a key's signing secret and verifying a link.

The canonical text, the signature and the link itself have one implementation, the
client's (``screenshot_client.signing``, SPEC §3): the server signs what it checks with
that same code, so a link the client builds and the link the server accepts cannot drift
apart.  The names are re-exported here for the server's modules and the CLI.
"""

from __future__ import annotations

import hmac
import secrets

from screenshot_client.signing import (
    EXPIRES,
    KEY_ID,
    LINK_PARAMETERS,
    SIGNATURE,
    Params,
    canonical_query,
    query_value,
    sign,
    signed_url,
)

__all__ = [
    "EXPIRES",
    "KEY_ID",
    "LINK_PARAMETERS",
    "SIGNATURE",
    "Params",
    "canonical_query",
    "new_signing_secret",
    "query_value",
    "sign",
    "signed_url",
    "verify",
]


def new_signing_secret() -> str:
    """A key's signing secret: 192 random bits, distinct from (and unrelated to) its webhook secret."""
    return "sign_" + secrets.token_hex(24)


def verify(secret: str, params: Params, signature: str) -> bool:
    """Is ``signature`` the one ``params`` should carry?  Compared in constant time."""
    try:
        expected = sign(secret, params).encode("ascii")
    except UnicodeEncodeError:  # text no signer could have encoded (lone surrogates)
        return False
    # A hostile signature may be any text: compare bytes, never raise on non-ASCII.
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
