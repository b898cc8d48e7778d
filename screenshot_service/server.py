"""The HTTP server around the app: aiohttp's, with the requests it cannot parse answered in §4's shape.

aiohttp answers a request its parser rejects (a request line or header over its
limit, a NUL or other forbidden byte in a header, garbage instead of a request
line) from its ``RequestHandler``, before any middleware runs: in text/plain,
with the parser's traceback logged at ERROR.  aiohttp offers no hook for that
answer (aio-libs/aiohttp#3287), only its ``handle_error`` method, so the server
here makes each connection's handler an ``ApiRequestHandler``: a client's mistake
gets the JSON error and one log line without a traceback; a 500 (a bug) keeps its
traceback.  The same handler puts an HTTP exception aiohttp raises before the
middlewares run (an unsupported ``Expect``) in that shape too.  ``ApiRunner`` is aiohttp's ``AppRunner`` making that server; ``run``
is ``web.run_app`` with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from ssl import SSLContext
from typing import Any

from aiohttp import web

from .api.error_middleware import from_http, json_error, parser_complaint
from .errors import ApiError, InternalError, MalformedRequest
from .observability import new_request_id

log = logging.getLogger("screenshot_service.errors")

class ApiRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, its own error answers in the API's error shape."""

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has begun already; no error answer can follow it")
        error: ApiError
        if status == 400:
            reason = parser_complaint(exc, message)
            log.info("malformed request from %s: %s", request.remote, reason)
            error = MalformedRequest(f"the request is not valid HTTP: {reason}")
        else:  # the handler itself failed, past every middleware: a bug
            self.log_exception("error handling request from %s", request.remote, exc_info=exc)
            error = InternalError("internal error")
        response = _answer(error)
        response.force_close()
        return response

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # An HTTP exception raised before the middlewares run (aiohttp's Expect handling) is
        # sent as the answer itself, in text/plain: put it in the API's shape first.
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            mapped = from_http(request, resp)
            if mapped is None:
                log.error("unmapped aiohttp error %d %s from %s", resp.status, resp.reason, request.remote)
                mapped = InternalError("internal error")
            resp = _answer(mapped)
        return await super().finish_response(request, resp, start_time)


def _answer(error: ApiError) -> web.Response:
    response = json_error(error)
    response.headers["X-Request-ID"] = new_request_id()
    return response


class ApiServer(web.Server):
    """aiohttp's low-level server, making ``ApiRequestHandler`` connections."""

    def __call__(self) -> ApiRequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """``web.AppRunner`` serving through an ``ApiServer``."""

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return ApiServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **made._kwargs,
        )


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: SSLContext | None,
    loop: asyncio.AbstractEventLoop,
    print: Callable[[str], None],
    **runner_options: Any,
) -> None:
    """``web.run_app`` for one host and port, through ``ApiRunner``: serve until SIGINT or
    SIGTERM, then shut the app down (its on_shutdown drain, then its cleanup contexts)."""
    main = loop.create_task(_serve(app, host, port, ssl_context, print, runner_options))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _serve(
    app: web.Application, host: str, port: int, ssl_context: SSLContext | None,
    print: Callable[[str], None], runner_options: dict[str, Any],
) -> None:
    runner = ApiRunner(app, handle_signals=True, **runner_options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        print(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler({"message": "unhandled exception during shutdown",
                                         "exception": task.exception(), "task": task})
