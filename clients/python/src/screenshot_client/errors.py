"""What the client raises, and how it reads the service's answers into it.

Every failure is one ``ScreenshotError`` carrying the error JSON (``status``, ``code``,
``message``, ``details``); an answer not in that shape (a proxy's page) still is one.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from typing import Any


class ScreenshotError(Exception):
    """What the service answered instead of a result (or that no answer came: ``status`` 0)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after  # seconds, from Retry-After (429, 503)

    def __repr__(self) -> str:
        return f"ScreenshotError(status={self.status}, code={self.code!r}, message={self.message!r})"



def loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise ScreenshotError(0, "malformed_answer", "the service's JSON answer could not be read") from None


def json_object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ScreenshotError(0, "malformed_answer", f"expected a JSON object, got {type(answer).__name__}")
    return answer


def error_from_answer(status: int, data: bytes, retry_after: str | None, api_key: str) -> ScreenshotError:
    """The error JSON as a ScreenshotError; an answer not in that shape (a proxy's page) still is
    one.  The key is redacted from whatever message is built from the answer (a page may echo it)."""
    wait = seconds(retry_after)
    with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
        error = json.loads(data)["error"]
        return ScreenshotError(int(error.get("status", status)), str(error["code"]),
                               redact(str(error.get("message", "")), api_key), error.get("details") or {},
                               retry_after=wait)
    text = redact(data[:200].decode("utf-8", "replace").strip(), api_key)
    return ScreenshotError(status, "http_error", text or f"HTTP {status}", retry_after=wait)


def redirected(status: int, location: str) -> ScreenshotError:
    return ScreenshotError(status, "redirected", f"the service answered {status} towards {location or 'nowhere'}; "
                           "the client does not follow redirects (check base_url)", {"location": location})


def redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "[api key]") if api_key else text


def seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds, or an HTTP date."""
    if not retry_after:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(retry_after))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time())
    return None

