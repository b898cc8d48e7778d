"""Signed links on the server: who signed it, is it intact and current, what it may carry.

A signed link is the key's own request (rate, concurrency, quota, charged on
success): once this module has named the key, the request runs the same
pipeline as a keyed GET.  The link sits in public HTML, so it carries nothing
that must stay private or that reaches the target on the caller's behalf.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..capture.declaration import SIGNED_LINK
from ..capture.options import CaptureOptions
from ..errors import InvalidParameter, InvalidSignature, SignatureExpired
from ..signing import EXPIRES, KEY_ID, LINK_PARAMETERS, SIGNATURE, verify
from ..state.base import KeyRecord, StateStore

# A public link is for an <img src>: the bytes, unless it asks otherwise.
DEFAULT_RESPONSE_TYPE = "image"
_BAD = "the link's signature does not match its parameters (or its key is unknown or revoked)"


def is_signed(query: Mapping[str, str]) -> bool:
    """Does the query mean to be a signed link?  Then it is judged as one, and only as one."""
    return SIGNATURE in query or KEY_ID in query


async def authenticate_signed(
    state: StateStore, params: Mapping[str, str], *, api_key_given: bool, now: float | None = None
) -> KeyRecord:
    """The key that signed this link, or the 400/401 that says why not.  ``params``: the query with
    each name once (capture/query.py: a name given twice would be signed with both values)."""
    if api_key_given:
        raise InvalidParameter.fields({
            "api_key": "a signed link carries no API key: send either api_key or key_id+signature",
            SIGNATURE if SIGNATURE in params else KEY_ID: "cannot be combined with an API key",
        })
    if not params.get(KEY_ID):
        raise InvalidParameter.fields({KEY_ID: "required with signature: the id of the key that signed the link"})
    signature = params.get(SIGNATURE)
    if not signature:
        raise InvalidSignature("a link with key_id needs a signature", details={"parameter": SIGNATURE})
    record = await state.key_by_id(params[KEY_ID])
    secret = record.signing_secret if record is not None and not record.revoked else ""
    # An empty secret (no key) must verify nothing: anyone can compute HMAC under "".
    if not secret or not verify(secret, params.items(), signature):
        raise InvalidSignature(_BAD)
    assert record is not None
    expires = params.get(EXPIRES)
    if expires is not None:
        # 18 digits: far past any real expiry, and short enough for int() (Python's digit limit).
        if not expires.isascii() or not expires.isdigit() or len(expires) > 18:
            raise InvalidParameter.fields({EXPIRES: "expected unix seconds (a non-negative integer, at most 18 digits)"})
        if (time.time() if now is None else now) > int(expires):
            raise SignatureExpired("the signed link has expired", details={EXPIRES: int(expires)})
    return record


def signed_link_options(params: Mapping[str, str]) -> CaptureOptions:
    """The capture options of a signed link: its query (each name once) less the link's own
    parameters, with the options a public link may not carry (option_table.py says which) refused by name."""
    options = {name: value for name, value in params.items() if name not in LINK_PARAMETERS}
    options.setdefault("response_type", DEFAULT_RESPONSE_TYPE)
    return CaptureOptions.from_query(options, place=SIGNED_LINK)
