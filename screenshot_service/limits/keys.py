"""API keys: generation, hashing at rest, lookup from a request.

A key is ``sk_`` + 32 random bytes in URL-safe base64 (256 bits).  Only its
SHA-256 is stored; a key's public ``id`` (``key_…``) is what logs and the CLI show.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from aiohttp import web

from ..capture.query import REPEATED
from ..errors import InvalidApiKey, InvalidParameter, MissingApiKey
from ..signing import new_signing_secret
from ..state.base import KeyRecord, StateStore

KEY_PREFIX = "sk_"
# What any key could look like: printable ASCII, no spaces.  Anything else (a header's
# undecodable bytes, a lone surrogate, 1 MB of text) is refused before hashing or a lookup.
_KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,256}")


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


async def create_key(state: StateStore, plan: str, name: str = "") -> tuple[KeyRecord, str]:
    """Store a new key and return (record, raw key); the raw key is never stored."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = KeyRecord(
        id="key_" + secrets.token_hex(8),
        name=name,
        plan=plan,
        created_at=datetime.now(UTC),
        revoked=False,
        webhook_secret="whsec_" + secrets.token_urlsafe(24),
        signing_secret=new_signing_secret(),
    )
    await state.add_key(record, hash_key(raw_key))
    return record, raw_key


def key_from_request(request: web.Request, body_key: object = None) -> str | None:
    """The key from Authorization: Bearer, X-API-Key, the JSON body or ?api_key=, in that order.

    A body ``api_key`` that is not text is an invalid key, and ``?api_key=`` given twice is a
    400 (which of the two was meant?), rather than either being passed over.
    """
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    header = request.headers.get("X-API-Key", "").strip()
    if header:
        return header
    if body_key is not None and not isinstance(body_key, str):
        raise InvalidApiKey("api_key must be a string")
    if isinstance(body_key, str) and body_key.strip():
        return body_key.strip()
    if len(request.query.getall("api_key", ())) > 1:
        raise InvalidParameter.fields({"api_key": REPEATED})
    query = request.query.get("api_key", "").strip()
    return query or None


async def authenticate(state: StateStore, raw_key: str | None) -> KeyRecord:
    if not raw_key:
        raise MissingApiKey(
            "an API key is required: send Authorization: Bearer KEY, X-API-Key: KEY or api_key"
        )
    if not _KEY_SHAPE.fullmatch(raw_key):
        raise InvalidApiKey("the API key is not valid: a key is printable ASCII without spaces")
    record = await state.key_by_hash(hash_key(raw_key))
    if record is None or record.revoked:
        raise InvalidApiKey("the API key is not valid or has been revoked")
    return record
