"""The content kinds a capture can deliver (SPEC §3.2), as the options declare them.

``format`` = one of CONTENT_FORMATS answers the page's content instead of an image;
``extract`` stores any of them beside the image.  Each is at most MAX_CONTENT_BYTES
of UTF-8 (else cut, with the warning ``content_truncated``).
"""

from __future__ import annotations

from typing import Any

from .scalar_parsers import Bad, described

CONTENT_FORMATS = ("html", "markdown", "text")
EXTRACT_KINDS = CONTENT_FORMATS
MAX_CONTENT_BYTES = 10 * 1024 * 1024


def _extract_kinds(value: Any) -> tuple[str, ...]:
    """A JSON list of kinds, or the query string's comma-separated form; each kind once, in the
    order of EXTRACT_KINDS (so that the same set is the same cached capture)."""
    items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise Bad(f"must be a list of {', '.join(EXTRACT_KINDS)}")
    kinds = {item.lower() for item in items}
    unknown = sorted(kinds - set(EXTRACT_KINDS))
    if unknown:
        raise Bad(f"{unknown[0][:40]!r} is not one of {', '.join(EXTRACT_KINDS)}")
    return tuple(kind for kind in EXTRACT_KINDS if kind in kinds)


extract_list = described(_extract_kinds, {
    "type": "array", "items": {"type": "string", "enum": list(EXTRACT_KINDS)}, "uniqueItems": True})
