"""GET /v1/files/{name}: stored captures, hotlinkable.

Answered as whole bytes with no Range or conditional handling: aiohttp's file
response would answer a bad Range (416) or a failed If-Match (412) with an empty
non-JSON body, outside SPEC §4, and a capture is small enough to send whole.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import STORAGE
from ..errors import NotFound


async def get_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    found = await request.app[STORAGE].get(name)
    if found is None:
        raise NotFound(f"no stored capture named {name!r}")
    data, content_type = found
    headers = {"Cache-Control": "public, max-age=86400, immutable", "X-Content-Type-Options": "nosniff",
               "Content-Type": content_type}  # a header: extracted text carries its charset
    return web.Response(body=data, headers=headers)
