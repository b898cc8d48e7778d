"""OpenTelemetry traces of requests, when asked for and installed (the ``otel`` extra).

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set and the packages importable, each request is a
server span (joining the caller's trace from ``traceparent``) and each stage capture/timing.py
counts for it (auth, cache, admission, navigation, capture, store, settle) a child span with
the same start and end, so the trace and ``Server-Timing`` never disagree.  The exporter reads
the standard ``OTEL_*`` variables itself.  Without the variable or the packages: no tracing,
no error, nothing imported.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .appkeys import REQUEST_ID, TIMINGS
from .capture.timing import STAGE_OBSERVER
from .observability import Handler, request_id_middleware

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("screenshot_service.tracing")

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME = "screenshot-service"
_PROVIDER = web.AppKey("tracer_provider", object)


def install_tracing(app: web.Application, provider: TracerProvider | None = None) -> bool:
    """Trace ``app``'s requests with ``provider`` (tests: an in-memory exporter's), else with an
    OTLP/HTTP exporter when the environment names an endpoint.  True when tracing is on."""
    if provider is None:
        if not os.environ.get(ENDPOINT_VARIABLE):
            return False
        provider = _otlp_provider()
        if provider is None:
            return False
        app[_PROVIDER] = provider
        app.on_cleanup.append(_flush)
    tracer = provider.get_tracer("screenshot_service")
    chain = app.middlewares  # inside the request id's, outside the error answers'
    position = chain.index(request_id_middleware) + 1 if request_id_middleware in chain else 0
    chain.insert(position, _tracing_middleware(tracer))
    return True


def _otlp_provider() -> TracerProvider | None:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("%s is set but OpenTelemetry is not installed (pip install 'screenshot-service[otel]'): "
                    "no traces", ENDPOINT_VARIABLE)
        return None
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over this default.
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing requests to %s", os.environ.get(ENDPOINT_VARIABLE))
    return provider


async def _flush(app: web.Application) -> None:
    provider: Any = app[_PROVIDER]
    provider.shutdown()  # exports what the batch still holds


def _tracing_middleware(tracer: Tracer) -> Any:
    from opentelemetry import propagate, trace

    @web.middleware
    async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route is not None else request.path}"
        with tracer.start_as_current_span(name, context=propagate.extract(request.headers),
                                          kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.path", request.path)  # never the query: it may hold api_key
            if REQUEST_ID in request:
                span.set_attribute("screenshot.request_id", request[REQUEST_ID])
            token = STAGE_OBSERVER.set(_StageSpans(tracer, span))
            try:
                response = await handler(request)
            finally:
                STAGE_OBSERVER.reset(token)
                if TIMINGS in request:
                    request[TIMINGS].observe_failed_stage()
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return response

    return tracing_middleware


class _StageSpans:
    """Each stage counted as a child span of the request's, timed as the stage was."""

    def __init__(self, tracer: Tracer, parent: Span) -> None:
        from opentelemetry import trace

        self._tracer = tracer
        self._context = trace.set_span_in_context(parent)
        # perf_counter readings to the epoch nanoseconds spans are stamped with.
        self._offset = time.time_ns() - time.perf_counter_ns()

    def stage(self, name: str, began: float, ended: float, *, failed: bool = False) -> None:
        from opentelemetry import trace

        span = self._tracer.start_span(name, context=self._context, start_time=self._ns(began))
        if failed:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end(end_time=self._ns(ended))

    def _ns(self, reading: float) -> int:
        return self._offset + int(reading * 1_000_000_000)
