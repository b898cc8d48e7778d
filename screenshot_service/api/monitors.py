"""POST/GET /v1/monitors, GET and DELETE /v1/monitors/{id}: parse → authenticate → MonitorService → JSON.

DELETE answers 200 with the monitor as it was (like DELETE /v1/jobs/{id}): no run starts after it.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import TARGET_HOST
from ..egress.urls import host_of
from ..monitors.keys import MONITORS
from .common import base_url, caller, json_response, key_in_headers, read_json_object


async def post_monitor(request: web.Request) -> web.Response:
    if key_in_headers(request):  # checked before the body, as for POST /v1/jobs
        key = await caller(request)
        body = await read_json_object(request, key_known=True)
    else:
        body = await read_json_object(request)
        key = await caller(request, body.get("api_key"))
    request[TARGET_HOST] = host_of(body.get("url"))
    monitor = await request.app[MONITORS].create(key, body, base_url=base_url(request))
    return json_response(monitor.to_json(), status=201, headers={"Location": monitor.status_url})


async def list_monitors(request: web.Request) -> web.Response:
    key = await caller(request)
    monitors = await request.app[MONITORS].of_key(key)
    return json_response({"monitors": [monitor.to_json() for monitor in monitors]})


async def get_monitor(request: web.Request) -> web.Response:
    key = await caller(request)
    monitor, runs = await request.app[MONITORS].get(key, request.match_info["id"])
    return json_response({**monitor.to_json(), "runs": runs})


async def delete_monitor(request: web.Request) -> web.Response:
    key = await caller(request)
    return json_response((await request.app[MONITORS].delete(key, request.match_info["id"])).to_json())
