"""GET and POST /v1/screenshot: parse → authenticate → the capture pipeline → answer."""

from __future__ import annotations

import base64
import contextlib

from aiohttp import web

from ..appkeys import ADMISSION, CAPTURE, KEY_ID, LIMITS, PIPELINE, STARTED, TARGET_HOST, TIMINGS
from ..browser.admission import Place
from ..browser.pool import BrowserPool
from ..capture.options import CaptureOptions
from ..capture.pipeline import Order
from ..capture.query import one_value_each
from ..capture.result import CaptureResult
from ..capture.timing import AUTH, StageTimings
from ..egress.urls import host_of
from ..limits.signed_links import is_signed, signed_link_options
from ..state.base import KeyRecord
from ..storage.customer import CustomerS3
from .common import base_url, caller, json_response, key_in_headers, read_json_object, signed_caller


async def get_screenshot(request: web.Request) -> web.StreamResponse:
    timings = request[TIMINGS] = StageTimings()
    pool = request.app[CAPTURE].pool
    pool.shed_if_full()  # 503 before any read, auth or state round trip when nobody could get a place
    signed = is_signed(request.query)  # key_id + signature instead of an API key (an <img src>)
    query = one_value_each(request.query)  # a repeated name is a 400 before any key is looked up
    async with request.app[PIPELINE].arrival_bound(request[STARTED]):
        with timings.stage(AUTH):
            key = await (signed_caller(request, query) if signed else caller(request))
    opts = signed_link_options(query) if signed else CaptureOptions.from_query(query)
    with _place(request, pool, key):
        return await _capture(request, key, opts)


async def post_screenshot(request: web.Request) -> web.StreamResponse:
    timings = request[TIMINGS] = StageTimings()
    pool = request.app[CAPTURE].pool
    pool.shed_if_full()  # 503 before any read, auth or state round trip when nobody could get a place
    if key_in_headers(request):
        # The header's key outranks any in the body: check it first, so a keyed request
        # never waits behind the bound on bodies read for callers not yet known.
        async with request.app[PIPELINE].arrival_bound(request[STARTED]):
            with timings.stage(AUTH):
                key = await caller(request)
        body = await read_json_object(request, key_known=True)
    else:
        body = await read_json_object(request)
        async with request.app[PIPELINE].arrival_bound(request[STARTED]):
            with timings.stage(AUTH):
                key = await caller(request, body.get("api_key"))
    opts = CaptureOptions.from_json(body)
    with _place(request, pool, key):
        # The caller's own bucket (POST only), validated with the options; never stored or logged.
        return await _capture(request, key, opts, opts.s3)


def _place(request: web.Request, pool: BrowserPool, key: KeyRecord) -> contextlib.AbstractContextManager[Place]:
    """The request's place in the pool, in its key's name, capped by its plan's share.  Taken only
    once the request is known (read and authenticated), so a slow or unauthenticated client never
    holds one, and a key holding fewer places than another may take one of that key's (README,
    Fair share of the pool)."""
    return pool.place(key.id, request.app[ADMISSION].plan_of(key).max_pool_share)


async def _capture(
    request: web.Request, key: KeyRecord, opts: CaptureOptions, customer: CustomerS3 | None = None
) -> web.StreamResponse:
    request[TARGET_HOST] = host_of(opts.url)
    order = Order(opts=opts, started=request[STARTED], key=key, limits=request[LIMITS],
                  base_url=base_url(request), customer_s3=customer, caller_present=lambda: _connected(request),
                  timings=request[TIMINGS])
    result = await request.app[PIPELINE].run(order)
    return render_result(result, opts.response_type, cache_status="MISS" if opts.cache and not customer else None)


def _connected(request: web.Request) -> bool:
    transport = request.transport  # None once aiohttp saw the connection close
    return transport is not None and not transport.is_closing()


async def add_server_timing(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a capture's answer, its errors included once the caller is known
    (a 429 too), says where its time went (Server-Timing)."""
    timings = request.get(TIMINGS)
    if timings is not None and KEY_ID in request:
        response.headers["Server-Timing"] = timings.header()


def render_result(result: CaptureResult, response_type: str, cache_status: str | None = None) -> web.StreamResponse:
    status = "HIT" if result.cached else cache_status
    headers = {"X-Cache": status} if status else None
    if response_type == "image":
        headers = {**(headers or {}), **image_headers(result)}
        if result.warnings:  # the body is the image: the warnings' codes travel in a header (SPEC §3)
            headers = {**(headers or {}), "X-Capture-Warnings": ",".join(result.warning_codes)}
        # A header, not aiohttp's content_type: extracted text carries its charset.
        return web.Response(body=result.data, headers={**(headers or {}), "Content-Type": result.stored.content_type})
    body = result.to_json()
    if response_type == "base64":
        body["image_base64"] = base64.b64encode(result.data).decode("ascii")
    return json_response(body, headers=headers)


def image_headers(result: CaptureResult) -> dict[str, str]:
    """What a JSON answer says beside the image, for an answer whose body is the image."""
    headers = {"X-Capture-Id": result.id, "X-Captured-At": result.captured_at_text}
    if result.diff is not None:
        headers["X-Diff-Changed-Ratio"] = str(result.diff["changed_ratio"])
        headers["X-Diff-Changed-Pixels"] = str(result.diff["changed_pixels"])
        headers["X-Diff-Image-Url"] = str(result.diff["image_url"])
        headers["X-Diff-Baseline-Id"] = str(result.diff["baseline"]["id"])
        if result.diff.get("size_changed"):
            headers["X-Diff-Size-Changed"] = "true"
    return headers
