"""A page per monitor test: ``/monitored/{name}`` renders ``scene_site.SCENES[name]`` (the scenes the
diff tests use), on a path of its own, so the site's hit count per path is one monitor's captures."""

from __future__ import annotations

from aiohttp import web

from tests.scene_site import SCENES, Scene, render


def add_monitor_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/monitored/{name}")
    async def monitored(request: web.Request) -> web.Response:
        return web.Response(text=render(SCENES.get(request.match_info["name"], Scene())), content_type="text/html")
