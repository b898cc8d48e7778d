"""Pages the monitor tests change between runs: ``/scene/{name}`` shows what ``SCENES[name]`` says.

``"blank"`` (or nothing set) is one flat colour (a ``blank_capture``); any CSS colour is a
200x200 square of it on white, so changing it changes 200x200 of the viewport's pixels.
"""

from __future__ import annotations

from aiohttp import web

SCENES: dict[str, str] = {}


def add_monitor_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/scene/{name}")
    async def scene(request: web.Request) -> web.Response:
        colour = SCENES.get(request.match_info["name"], "blank")
        square = "" if colour == "blank" else (
            f"<div style='position:absolute;left:100px;top:100px;width:200px;height:200px;background:{colour}'></div>")
        page = f"<!doctype html><html><body style='margin:0;background:#fff'>{square}</body></html>"
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
