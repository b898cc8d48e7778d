"""GET and POST /v1/screenshot: parse → authenticate → admit → capture → answer."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlsplit

from aiohttp import web

from ..appkeys import ADMISSION, CAPTURE, LIMIT_HEADERS, STARTED, TARGET_HOST
from ..capture.options import CaptureOptions
from ..capture.service import CaptureResult
from ..state.base import KeyRecord
from ..storage.customer import CustomerS3
from .common import base_url, caller, json_response, read_json_object


async def get_screenshot(request: web.Request) -> web.StreamResponse:
    key = await caller(request)
    opts = CaptureOptions.from_query(request.query)
    return await _capture(request, key, opts)


async def post_screenshot(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    key = await caller(request, body.get("api_key"))
    # The caller's own bucket (POST only): parsed here, never stored or logged.
    customer_s3 = body.pop("s3", None)
    opts = CaptureOptions.from_json(body)
    customer = CustomerS3.from_json(customer_s3) if customer_s3 is not None else None
    return await _capture(request, key, opts, customer)


async def _capture(
    request: web.Request, key: KeyRecord, opts: CaptureOptions, customer: CustomerS3 | None = None
) -> web.StreamResponse:
    request[TARGET_HOST] = urlsplit(opts.url or "").hostname or ""
    async with request.app[ADMISSION].admit(key, request[LIMIT_HEADERS]) as ticket:
        result = await request.app[CAPTURE].capture(
            opts, started=request[STARTED], base_url=base_url(request), customer_s3=customer
        )
        await asyncio.shield(ticket.commit())
    return render_result(result, opts.response_type)


def render_result(result: CaptureResult, response_type: str) -> web.StreamResponse:
    if response_type == "image":
        return web.Response(body=result.data, content_type=result.stored.content_type)
    body = result.to_json()
    if response_type == "base64":
        body["image_base64"] = base64.b64encode(result.data).decode("ascii")
    return json_response(body)
