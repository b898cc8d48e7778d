"""The one place an error becomes an answer: SPEC §4's JSON, whatever raised it.

``ApiError``s are rendered as they are; the layers' own exceptions (state, storage,
browser, egress) and aiohttp's HTTP exceptions (no route, wrong method, body too big)
are mapped onto the ``ApiError`` for their code first.  Anything else is a bug: it
becomes a 500 whose body carries no internals, while the log line carries the
traceback and the request id to find it.  A client's mistake is never logged with a
traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from ..appkeys import REQUEST_ID
from ..error_map import as_api_error
from ..errors import (
    CLIENT_CLOSED_REQUEST,
    ApiError,
    CallerGone,
    ExpectationFailed,
    InternalError,
    MalformedBody,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from ..faults import LayerError

log = logging.getLogger("screenshot_service.errors")

_COMPLAINT_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(error: ApiError) -> web.Response:
    return web.Response(
        status=error.status,
        text=json.dumps(error.to_dict()),
        content_type="application/json",
        headers=error.response_headers(),
    )


def from_http(request: web.BaseRequest, http: web.HTTPException) -> ApiError | None:
    """aiohttp's own HTTP errors as the ``ApiError`` of their code; None for one it never raises
    at us (a bug to surface, not a code to invent)."""
    if isinstance(http, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(f"method {request.method} is not allowed on {request.path}",
                                details={"allowed": sorted(http.allowed_methods)},
                                headers={"Allow": ", ".join(sorted(http.allowed_methods))})
    if isinstance(http, web.HTTPNotFound):
        return NotFound(f"no route for {request.method} {request.path}")
    if isinstance(http, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(http.text or "request body too large")
    if isinstance(http, web.HTTPExpectationFailed):
        return ExpectationFailed("only 'Expect: 100-continue' is supported")
    if isinstance(http, web.HTTPBadRequest):
        return MalformedRequest(http.text or "bad request")
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return json_error(error)
    except LayerError as error:
        return json_error(as_api_error(error))
    except CallerGone:
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    except web.RequestPayloadError as error:
        # The body's framing or encoding is broken (a bad chunk, a gzip that is not one): the
        # connection cannot carry another request, so the answer closes it (app's _close_middleware)
        # instead of aiohttp reading on into the same error.
        reason = parser_complaint(error.__cause__ or error, None)
        return json_error(MalformedBody(f"the request body could not be read: {reason}",
                                        headers={"Connection": "close"}))
    except web.HTTPException as http:
        if http.status < 400:
            raise
        mapped = from_http(request, http)
        if mapped is not None:
            return json_error(mapped)
        return _internal_error(request)
    except Exception:
        return _internal_error(request)


def parser_complaint(exc: BaseException | None, message: str | None) -> str:
    """aiohttp's parser's complaint without the bytes it quotes: a request line carries the query
    string, and with it maybe an api_key, which must reach neither the log nor the answer."""
    if isinstance(exc, LineTooLong):
        return "the request line or a header is longer than the server accepts"
    text = exc.message if isinstance(exc, HttpProcessingError) and exc.message else message or str(exc or "")
    first = (str(text).strip().splitlines() or [""])[0]
    for quote in (": ", "b'", 'b"', "bytearray(", "'", '"'):
        first = first.split(quote, 1)[0]
    return first.strip().rstrip(":.").strip()[:_COMPLAINT_CHARS] or "bad request"


def _internal_error(request: web.Request) -> web.Response:
    request_id = request.get(REQUEST_ID, "-")
    log.exception("unhandled error")  # the log record carries the request id (log_context)
    return json_error(InternalError(f"internal error; quote request id {request_id}"))
