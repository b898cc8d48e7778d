"""The words of visual change (SPEC §3.3): capture ids, ``compare_to``'s values, and which
warnings keep a capture from ever becoming a ``previous`` baseline."""

from __future__ import annotations

import re
import secrets
from typing import Any

from .scalar_parsers import Bad, described

PREVIOUS = "previous"
CAPTURE_ID_PREFIX = "cap_"
# 144 random bits, URL-safe: unguessable, so an id is no handle on anyone else's capture.
_ID_BYTES = 18
CAPTURE_ID = re.compile(r"cap_[A-Za-z0-9_-]{16,64}")
DEFAULT_THRESHOLD = 0.1
# A capture that may show the wrong page (blank, an error page, not ready) is never the
# `previous` baseline: otherwise the next good capture would be reported as a change.
NOT_A_BASELINE = frozenset({"blank_capture", "http_error", "ready_timeout"})


def new_capture_id() -> str:
    return CAPTURE_ID_PREFIX + secrets.token_urlsafe(_ID_BYTES)


def _compare_to(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == PREVIOUS:
            return PREVIOUS
        if CAPTURE_ID.fullmatch(text):
            return text
    raise Bad("must be `previous` or a capture id (`cap_…`, the `id` of an earlier result)")


compare_to = described(_compare_to, {"type": "string", "pattern": f"^(previous|{CAPTURE_ID.pattern})$"})


MAX_REGIONS = 50
_BOX = {"type": "object", "required": ["x", "y", "width", "height"],
        "properties": {k: {"type": "integer", "minimum": 0} for k in ("x", "y", "width", "height")}}
# The result's ``diff`` (/v1/openapi.json is built from it).
DIFF_SCHEMA: dict[str, Any] = {
    "description": "with compare_to: the new image against the baseline; null (and the warning "
                   "`no_baseline`) when there was none",
    "oneOf": [{"type": "null"}, {
        "type": "object", "required": ["baseline", "changed_pixels", "changed_ratio", "regions", "image_url"],
        "properties": {
            "baseline": {"type": "object", "required": ["id", "captured_at"], "properties": {
                "id": {"type": "string"}, "captured_at": {"type": "string", "format": "date-time"}}},
            "changed_pixels": {"type": "integer", "minimum": 0},
            "changed_ratio": {"type": "number", "minimum": 0, "maximum": 1,
                              "description": "changed pixels over the compared (common top-left) area"},
            "regions": {"type": "array", "maxItems": MAX_REGIONS, "items": _BOX,
                        "description": "boxes around the changed areas, in image pixels"},
            "size_changed": {"type": "boolean", "description": "present (true) when the sizes differ"},
            "image_url": {"type": "string", "description": "the new image, faded, with changed pixels in red; "
                                                          "the capture's own url when no pixel changed"},
        }}],
}
