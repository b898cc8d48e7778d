"""What one benchmark capture is: the same request for the service, the floor and the naive loop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CaptureSpec:
    """One kind of capture of one fixture page (``path`` is joined to the site's base URL)."""

    page: str  # short name used in scenario names: small, heavy, lazy, slow
    path: str
    width: int = 1280
    height: int = 800
    full_page: bool = False
    max_height: int = 16384  # the service's default cap for full-page height
    thumb_width: int | None = None  # the service only (thumbs.py): the same capture scaled down
    extract: str | None = None  # the service only (extract.py): content stored beside the image
    format: str = "png"  # or pdf: the service's defaults, the floor's Page.printToPDF with the same paper
    proxy_pool: str | None = None  # the service only (upstream.py): chained through an upstream proxy
    compare_to: str | None = None  # the service only (diffs.py): compared with an earlier capture

    def query(self) -> dict[str, str]:
        """The service's query parameters for this capture (besides url and response_type)."""
        params = {"width": str(self.width), "height": str(self.height)}
        if self.full_page:
            params["full_page"] = "true"
        if self.thumb_width is not None:
            params["thumb_width"] = str(self.thumb_width)
        if self.extract is not None:
            params["extract"] = self.extract
        if self.format != "png":
            params["format"] = self.format
        if self.proxy_pool is not None:
            params["proxy_pool"] = self.proxy_pool
        if self.compare_to is not None:
            params["compare_to"] = self.compare_to
        return params

    def produced(self, data: bytes) -> bool:
        """Whether ``data`` is what this capture makes (a PNG, or a PDF)."""
        return data.startswith(b"%PDF-" if self.format == "pdf" else b"\x89PNG")


PAGES: dict[str, CaptureSpec] = {
    "small": CaptureSpec("small", "/small"),
    "heavy": CaptureSpec("heavy", "/heavy"),
    "lazy": CaptureSpec("lazy", "/lazy", full_page=True),
    "slow": CaptureSpec("slow", "/slow"),
    "document": CaptureSpec("document", "/document", format="pdf"),  # a long document printed to PDF
}
