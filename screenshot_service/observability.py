"""Request ids and the redacting JSON access log.

The access log never prints a query string (``api_key=`` travels there on the
legacy GET), a header value or a request body: only the method, the path, the
key's public id and the target's host.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .appkeys import KEY_ID, REQUEST_ID, TARGET_HOST

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
        self.logger.info(json.dumps({k: v for k, v in record.items() if v is not None}))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Line breaks (C0, C1 and Unicode's own) and other control characters; a tab stays.
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class OneLineFormatter(logging.Formatter):
    """Every record is one line: a line break in a message or a traceback (text a page threw or
    a caller sent, say) is escaped, so no text can forge a record of its own in the log."""

    def format(self, record: logging.LogRecord) -> str:
        return _LINE_BREAKING.sub(_escaped, super().format(record))


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def log_handler() -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    return handler


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), handlers=[log_handler()])
    # pyppeteer logs every DevTools message at debug and its URL-bearing events at info.
    logging.getLogger("pyppeteer").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
