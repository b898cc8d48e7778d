"""POST /v1/jobs, GET and DELETE /v1/jobs/{id}: parse → authenticate → JobService → JSON."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import LIMITS, TARGET_HOST
from ..egress.urls import host_of
from ..jobs.idempotency import idempotency_key
from ..jobs.keys import JOBS
from ..jobs.models import Job
from .common import base_url, caller, json_response, key_in_headers, read_json_object


async def post_job(request: web.Request) -> web.Response:
    if key_in_headers(request):  # checked before the body, as for POST /v1/screenshot
        key = await caller(request)
        body = await read_json_object(request, key_known=True)
    else:
        body = await read_json_object(request)
        key = await caller(request, body.get("api_key"))
    request[TARGET_HOST] = host_of(body.get("url"))
    job, created = await request.app[JOBS].submit(
        key, body, base_url=base_url(request), idempotency_key=idempotency_key(request),
        limits=request[LIMITS],
    )  # fmt: skip
    headers = {"Location": job.status_url}
    if not created:
        headers["Idempotent-Replayed"] = "true"  # nothing new was accepted: 200, not 202
    return _job_response(job, status=202 if created else 200, headers=headers)


async def get_job(request: web.Request) -> web.Response:
    key = await caller(request)
    return _job_response(await request.app[JOBS].get(key, request.match_info["id"]))


async def delete_job(request: web.Request) -> web.Response:
    key = await caller(request)
    return _job_response(await request.app[JOBS].cancel(key, request.match_info["id"]))


def _job_response(job: Job, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(job.to_json(), status=status, headers=headers)
