"""What one capture produced, and its JSON form (SPEC §4; ``id``, ``captured_at`` and ``diff``
of §3.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..storage.base import StoredObject
from .diff_options import new_capture_id
from .facts import CaptureWarning, PageFacts


@dataclass(frozen=True)
class CaptureResult:
    stored: StoredObject
    data: bytes
    format: str
    width: int
    height: int
    took_ms: int
    cached: bool = False
    blocked_requests: int = 0
    clamped: bool = False
    page: PageFacts = PageFacts()  # the main document after redirects (SPEC §4)
    warnings: tuple[CaptureWarning, ...] = ()  # what may be wrong with the image; never a failure
    pages: int | None = None  # a PDF's page count
    metadata: dict[str, Any] | None = None  # with metadata=true
    content: dict[str, StoredObject] = field(default_factory=dict)  # ``extract``'s kinds, stored beside
    # Which capture this is: a cached answer is the original capture, so it keeps both.
    id: str = field(default_factory=new_capture_id)
    captured_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # With compare_to: the comparison (SPEC §3.3), None when there was no baseline.
    compared: bool = False
    diff: dict[str, Any] | None = None

    @property
    def captured_at_text(self) -> str:
        """ISO 8601 UTC to the millisecond: two captures a second apart still read in order."""
        return iso_ms(self.captured_at)

    @property
    def warning_codes(self) -> list[str]:
        return [w.code for w in self.warnings]

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "captured_at": self.captured_at_text,
            "url": self.stored.url,
            "expires_at": iso(self.stored.expires_at),
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": len(self.data),
            "took_ms": self.took_ms,
            "cached": self.cached,
            "blocked_requests": self.blocked_requests,
            "page": self.page.to_json(),
            "warnings": [w.to_json() for w in self.warnings],
        }
        if self.clamped:
            body["clamped"] = True
        if self.pages is not None:
            body["pages"] = self.pages
        if self.metadata is not None:
            body["metadata"] = self.metadata
        if self.content:
            body["content"] = {kind: {"url": s.url, "bytes": s.size} for kind, s in self.content.items()}
        if self.compared:
            body["diff"] = self.diff
        return body


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
