"""GET /v1/files/{name}: stored captures of the local backend, hotlinkable."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import STORAGE
from ..errors import NotFound
from ..storage.base import CONTENT_TYPES
from ..storage.local import LocalStorage


async def get_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    storage = request.app[STORAGE]
    headers = {"Cache-Control": "public, max-age=86400, immutable", "X-Content-Type-Options": "nosniff"}
    if isinstance(storage, LocalStorage):
        path = storage.path_of(name)
        if path is None:
            raise NotFound(f"no stored capture named {name!r}")
        response = web.FileResponse(path, headers=headers)
        response.content_type = CONTENT_TYPES[name.rsplit(".", 1)[1]]
        return response
    found = await storage.get(name)
    if found is None:
        raise NotFound(f"no stored capture named {name!r}")
    data, content_type = found
    return web.Response(body=data, content_type=content_type, headers=headers)
