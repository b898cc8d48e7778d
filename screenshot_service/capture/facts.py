"""What a capture captured: the main document's facts and the warnings about the image.

``PageWatch`` follows the main frame's document requests through DevTools
Network events (one per capture, made with its session before navigation):
each redirect hop, and the URL and status of the last response that became the
page (committed: a download or a 204 does not).  Warnings are
collected on the same object while a capture runs (``ready_timeout`` during
navigation, the rest at capture time) and end up in the result's ``page`` and
``warnings`` (SPEC §4).  Warnings never fail a capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..egress.http1 import EGRESS_HEADER

if TYPE_CHECKING:
    from ..browser.page_driver import PageDriver

# The codes of SPEC §4, in the order they are reported.
WARNING_CODES = ("http_error", "fonts_not_loaded", "images_broken", "blank_capture", "ready_timeout", "clamped",
                 "pdf_header_clipped", "content_truncated", "no_baseline")


# JSON Schemas of the result's ``warnings`` items and ``page`` (/v1/openapi.json is built from them).
WARNING_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string", "enum": list(WARNING_CODES)}, "message": {"type": "string"},
                   "details": {"type": "object"}},
}
PAGE_FACTS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["final_url", "status_code", "title", "redirects"],
    "description": "the main document after redirects (and after navigations the page started itself); "
                   "final_url and status_code are null for html input that stays on its own document",
    "properties": {"final_url": {"type": ["string", "null"]}, "status_code": {"type": ["integer", "null"]},
                   "title": {"type": "string"}, "redirects": {"type": "integer", "minimum": 0}},
}


@dataclass(frozen=True)
class CaptureWarning:
    code: str
    message: str
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CaptureWarning:
        return cls(code=raw["code"], message=raw["message"], details=raw.get("details"))


@dataclass(frozen=True)
class PageFacts:
    """The main document after redirects; ``status_code`` and ``final_url`` are None for ``html``
    input that did not navigate elsewhere."""

    final_url: str | None = None
    status_code: int | None = None
    title: str = ""
    redirects: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"final_url": self.final_url, "status_code": self.status_code, "title": self.title,
                "redirects": self.redirects}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> PageFacts:
        raw = raw or {}
        return cls(final_url=raw.get("final_url"), status_code=raw.get("status_code"),
                   title=raw.get("title", ""), redirects=raw.get("redirects", 0))


@dataclass
class PageWatch:
    """The main frame's document responses during one capture, and the warnings gathered so far."""

    page: PageDriver = field(repr=False)
    final_url: str | None = None
    status_code: int | None = None
    redirects: int = 0
    egress: str | None = None  # the egress proxy's own error page (its mark): a failure, not an HTTP error
    warnings: list[CaptureWarning] = field(default_factory=list)
    _hops: dict[str, int] = field(default_factory=dict)  # requestId -> redirects followed so far
    # loaderId -> the document's response, until it commits: an answer that never becomes the
    # page (a 204, a download) says nothing about the page
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.page.on("Network.requestWillBeSent", self._on_request)
        self.page.on("Network.responseReceived", self._on_response)
        self.page.on("Page.frameNavigated", self._on_navigated)

    def _is_main_document(self, event: dict[str, Any]) -> bool:
        return event.get("type") == "Document" and event.get("frameId") == self.page.main_frame_id

    def _on_request(self, event: dict[str, Any]) -> None:
        if self._is_main_document(event) and event.get("redirectResponse"):
            request_id = event.get("requestId", "")
            self._hops[request_id] = self._hops.get(request_id, 0) + 1

    def _on_response(self, event: dict[str, Any]) -> None:
        if self._is_main_document(event):
            self._answers[str(event.get("loaderId") or event.get("requestId"))] = event

    def _on_navigated(self, event: dict[str, Any]) -> None:
        frame = event.get("frame") or {}
        if not frame.get("parentId") and frame.get("id") == self.page.main_frame_id:
            answer = self._answers.pop(str(frame.get("loaderId")), None)
            if answer is not None:
                self._committed(answer)

    def _committed(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self.final_url = response.get("url") or self.final_url
        status = response.get("status")
        self.status_code = int(status) if isinstance(status, int | float) else None
        self.redirects = self._hops.get(event.get("requestId", ""), 0)
        self.egress = next((str(v) for k, v in (response.get("headers") or {}).items()
                            if str(k).lower() == EGRESS_HEADER.lower()), None)

    def warn(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        assert code in WARNING_CODES, code
        if all(w.code != code for w in self.warnings):
            self.warnings.append(CaptureWarning(code, message, details))

    def unwarn(self, code: str) -> None:
        self.warnings = [w for w in self.warnings if w.code != code]

    def facts(self, title: str, *, html: bool) -> PageFacts:
        if html and self.final_url is None:  # html that navigated somewhere reports where
            return PageFacts(title=title)
        return PageFacts(final_url=self.final_url, status_code=self.status_code, title=title,
                         redirects=self.redirects)

    def sorted_warnings(self) -> tuple[CaptureWarning, ...]:
        return tuple(sorted(self.warnings, key=lambda w: WARNING_CODES.index(w.code)))

