"""Idempotency-Key: a retried POST /v1/jobs returns the job it already created.

The key is scoped to the API key that sent it and stored with the job, so it
expires with the job.  "Same body" is judged on a fingerprint of the parsed
JSON (key order and whitespace do not matter; where the API key travelled does
not either), so a client that re-serialises its retry is still recognised.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..errors import IdempotencyMismatch, InvalidParameter
from .models import Job

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
_ALLOWED = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: it is echoed in logs and key names


def idempotency_key(request: web.Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if not value or len(value) > MAX_LENGTH or not _ALLOWED.match(value):
        raise InvalidParameter.fields(
            {HEADER: f"must be 1 to {MAX_LENGTH} visible ASCII characters (a UUID is a good choice)"}
        )
    return value


def fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the body without ``api_key``."""
    canonical = {k: v for k, v in body.items() if k != "api_key"}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_replay(existing: Job, fingerprint_: str, key: str) -> Job:
    """The earlier job when the body matches; 422 idempotency_mismatch when it does not."""
    if existing.fingerprint != fingerprint_:
        raise IdempotencyMismatch(
            f"{HEADER} {key!r} was already used with a different request body; "
            "use a new key for a new job",
            details={"idempotency_key": key, "job_id": existing.id},
        )
    return existing
