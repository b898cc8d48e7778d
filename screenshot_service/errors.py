"""The API's error vocabulary (SPEC §4): one ``ApiError`` subclass per code.

Every failure a caller can see is an ``ApiError`` subclass carrying its HTTP
status and stable ``code``.  Handlers and services raise them; the layers below
(state, storage, browser, egress) raise their own exceptions, which
``error_map.as_api_error`` maps onto these at the edge.
``api/error_middleware.py`` is the only place that turns them into JSON, and
``server.py`` renders aiohttp's own parser errors with the same shape.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    # The class is the code: another status or code is another class, never a rewritten instance.
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("status", "code"):
            raise AttributeError(f"{type(self).__name__}.{name} belongs to the class; raise the class of that code")
        super().__setattr__(name, value)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            # Retry-After is whole seconds; never tell a client "0" when it must wait.
            headers["Retry-After"] = str(max(1, int(-(-self.retry_after // 1))))
        return headers


# 400 -------------------------------------------------------------------------
class InvalidParameter(ApiError):
    status, code = 400, "invalid_parameter"

    @classmethod
    def fields(cls, problems: dict[str, str], known: list[str] | None = None) -> InvalidParameter:
        names = ", ".join(sorted(problems))
        details: dict[str, Any] = {"fields": problems}
        if known is not None:
            details["known_parameters"] = known
        return cls(f"invalid parameter(s): {names}", details=details)


class InvalidUrl(ApiError):
    status, code = 400, "invalid_url"


class BlockedTarget(ApiError):
    status, code = 400, "blocked_target"


class MalformedBody(ApiError):
    status, code = 400, "malformed_body"


class MalformedRequest(ApiError):
    """The HTTP itself could not be parsed: a request line or header over its limit, a NUL or
    other forbidden byte in a header, garbage instead of a request line."""

    status, code = 400, "malformed_request"


class SelectorNotFound(ApiError):
    status, code = 400, "selector_not_found"


class ActionFailed(ApiError):
    """A step of ``actions`` (or the top-level ``wait_for_function``) failed on the page:
    details ``index`` (None for the top-level option), ``action`` and ``reason``."""

    status, code = 400, "action_failed"


# 401 / 404 / 405 / 408 / 409 / 413 / 417 / 422 ---------------------------------------------
class MissingApiKey(ApiError):
    status, code = 401, "missing_api_key"


class InvalidApiKey(ApiError):
    status, code = 401, "invalid_api_key"


class InvalidSignature(ApiError):
    """A signed link whose signature is missing, wrong, or made for an unknown or revoked key."""

    status, code = 401, "invalid_signature"


class SignatureExpired(ApiError):
    """A signed link with a good signature, used after its ``expires``."""

    status, code = 401, "signature_expired"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    """The path exists, the method does not (the answer carries ``Allow``)."""

    status, code = 405, "method_not_allowed"


class ExpectationFailed(ApiError):
    """An ``Expect`` header other than ``100-continue``."""

    status, code = 417, "expectation_failed"


class JobNotCancelable(ApiError):
    """409 Conflict: the request is fine, the job's state forbids it (not in SPEC §4; README says why)."""

    status, code = 409, "job_not_cancelable"


class RequestTimeout(ApiError):
    """The request (its body) did not arrive within server.body_timeout_seconds."""

    status, code = 408, "request_timeout"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class QuotaExceeded(ApiError):
    status, code = 422, "quota_exceeded"


class IdempotencyMismatch(ApiError):
    status, code = 422, "idempotency_mismatch"


class MonitorLimitReached(ApiError):
    """The key already has its plan's ``max_monitors`` monitors."""

    status, code = 422, "monitor_limit_reached"


class PageMemoryExceeded(ApiError):
    """The page needed more memory than ``browser.max_page_memory_mb`` (its renderer was stopped), or
    the browser's shared processes more than ``browser.max_browser_memory_mb`` (it was replaced).
    Not in SPEC §4 (README says why): the request is well formed, the page cannot be captured within bounds."""

    status, code = 422, "page_memory_exceeded"


class PdfTooManyPages(ApiError):
    """The document prints to more than ``capture.max_pdf_pages`` pages: printing stopped there."""

    status, code = 422, "pdf_too_many_pages"


# 429 -----------------------------------------------------------------------------
class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class ConcurrencyLimited(ApiError):
    status, code = 429, "concurrency_limited"


# 5xx -----------------------------------------------------------------------------
class TargetUnreachable(ApiError):
    status, code = 502, "target_unreachable"


class TargetHttpError(ApiError):
    """The main document answered >= 400 and the caller asked for that to fail (``fail_on_http_error``)."""

    status, code = 502, "target_http_error"


class StorageError(ApiError):
    status, code = 502, "storage_error"


class ProxyError(ApiError):
    """The capture's upstream proxy (``proxy``/``proxy_pool``) was unreachable, refused, or refused the credentials."""

    status, code = 502, "proxy_error"


class Overloaded(ApiError):
    status, code = 503, "overloaded"


class BrowserUnavailable(ApiError):
    status, code = 503, "browser_unavailable"


class StateUnavailable(ApiError):
    status, code = 503, "state_unavailable"


class CaptureTimeout(ApiError):
    status, code = 504, "capture_timeout"


class InternalError(ApiError):
    status, code = 500, "internal_error"


def error_codes() -> dict[str, list[str]]:
    """Every code a caller can see, by HTTP status: the one table OpenAPI lists (api/openapi.py).
    Built from the classes above, so a new error cannot be left out of it."""
    table: dict[str, list[str]] = {}
    pending = list(ApiError.__subclasses__())
    while pending:
        kind = pending.pop(0)
        if kind.__module__ == __name__:
            codes = table.setdefault(str(kind.status), [])
            if kind.code not in codes:
                codes.append(kind.code)
        pending[:0] = kind.__subclasses__()
    return dict(sorted(table.items()))


class CallerGone(Exception):
    """The client hung up before its answer: nothing is delivered, so nothing is charged."""


# nginx's "client closed request": what the access log and metrics record for a
# CallerGone; the client, gone, never sees it.
CLIENT_CLOSED_REQUEST = 499
