"""Request ids, the redacting access log and the log's two formats (``log.format``).

The access log never prints a query string (``api_key=`` travels there on the
legacy GET), a header value or a request body: only the method, the path, the
key's public id and the target's host.  Every record is one line in either format, and
names the request (and job) it was written for (log_context.py).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from . import log_context
from .appkeys import KEY_ID, REQUEST_ID, TARGET_HOST

if TYPE_CHECKING:
    from .config import LogConfig

access_log = logging.getLogger("screenshot_service.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo a sane X-Request-ID or make one; everything downstream can log it."""
    offered = request.headers.get("X-Request-ID", "")
    request_id = offered if _REQUEST_ID.match(offered) else new_request_id()
    request[REQUEST_ID] = request_id
    try:
        with log_context.bound(log_context.REQUEST_ID, request_id):
            response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = request_id
        raise
    response.headers["X-Request-ID"] = request_id
    return response


def new_request_id() -> str:
    return secrets.token_hex(12)


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON line per request, with nothing secret in it."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        record: dict[str, Any] = {
            "request_id": request.get(REQUEST_ID),
            "method": request.method,
            "path": request.path,  # never the query string
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
            "bytes": response.body_length,
            "key_id": request.get(KEY_ID),
            "target_host": request.get(TARGET_HOST),
        }
        fields = {k: v for k, v in record.items() if v is not None}
        # The text format prints the fields as the message's JSON; the JSON format as its own.
        self.logger.info(json.dumps(fields), extra={ACCESS_FIELDS: fields,
                                                    ACCESS_SUMMARY: f"{request.method} {request.path} {response.status}"})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


ACCESS_FIELDS, ACCESS_SUMMARY = "access_fields", "access_summary"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(context)s%(message)s"
# Line breaks (C0, C1 and Unicode's own) and other control characters; a tab stays.
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class OneLineFormatter(logging.Formatter):
    """Every record is one line: a line break in a message or a traceback (text a page threw or
    a caller sent, say) is escaped, so no text can forge a record of its own in the log."""

    def format(self, record: logging.LogRecord) -> str:
        ids = log_context.record_context(record)
        record.context = "".join(f"{name}={value} " for name, value in ids.items())
        return _LINE_BREAKING.sub(_escaped, super().format(record))


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``json.dumps`` escapes every line break and quote that any text
    carries (ASCII only, so U+2028 too), so no text can forge a record or a field."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, ACCESS_FIELDS, None) or {}
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": getattr(record, ACCESS_SUMMARY, None) if fields else record.getMessage(),
            **log_context.record_context(record),
            **fields,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def log_handler(log_format: str = "text") -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter(LOG_FORMAT))
    return handler


def configure_logging(log: LogConfig) -> None:
    logging.basicConfig(level=log.level.upper(), handlers=[log_handler(log.format)])
    # pyppeteer logs every DevTools message at debug and its URL-bearing events at info.
    logging.getLogger("pyppeteer").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
