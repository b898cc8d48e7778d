"""POST /v1/batches, GET and DELETE /v1/batches/{id}: parse → authenticate → BatchService → JSON."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import LIMITS
from ..jobs.batch_models import Batch
from ..jobs.idempotency import idempotency_key
from ..jobs.keys import BATCHES
from ..jobs.models import Job
from .common import base_url, caller, json_response, key_in_headers, read_json_object


async def post_batch(request: web.Request) -> web.Response:
    if key_in_headers(request):  # checked before the body, as for POST /v1/jobs
        key = await caller(request)
        body = await read_json_object(request, key_known=True)
    else:
        body = await read_json_object(request)
        key = await caller(request, body.get("api_key"))
    batch, items, created = await request.app[BATCHES].submit(
        key, body, base_url=base_url(request), idempotency_key=idempotency_key(request), limits=request[LIMITS],
    )  # fmt: skip
    headers = {"Location": batch.status_url}
    if not created:
        headers["Idempotent-Replayed"] = "true"  # nothing new was accepted: 200, not 202
    return _batch_response(batch, items, status=202 if created else 200, headers=headers)


async def get_batch(request: web.Request) -> web.Response:
    key = await caller(request)
    return _batch_response(*await request.app[BATCHES].get(key, request.match_info["id"]))


async def delete_batch(request: web.Request) -> web.Response:
    key = await caller(request)
    return _batch_response(*await request.app[BATCHES].cancel(key, request.match_info["id"]))


def _batch_response(
    batch: Batch, items: list[Job | None], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(batch.to_json(items), status=status, headers=headers)
