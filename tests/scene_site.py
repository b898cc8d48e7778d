"""A test-site page whose look the test sets between captures: /scene?name=N renders SCENES[N].

A dark bar across the top keeps a scene from ever being one flat colour (blank_capture), unless
the test asks for ``blank`` (nothing drawn at all); ``box`` paints one rectangle (CSS px = image px at scale 1)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass
class Scene:
    background: tuple[int, int, int] = (240, 240, 240)
    box: tuple[int, int, int, int] | None = None  # x, y, width, height
    box_colour: tuple[int, int, int] = (0, 90, 200)
    height: int | None = None  # the document's height in px (full_page captures)
    status: int = 200
    blank: bool = False  # one flat colour, no bar


SCENES: dict[str, Scene] = {}


def _rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)


def render(scene: Scene) -> str:
    parts = ["<div style='position:absolute;left:0;top:0;width:100%;height:20px;background:rgb(20,20,20)'></div>"]
    if scene.blank:
        parts = []
    elif scene.box is not None:
        x, y, w, h = scene.box
        parts.append(f"<div style='position:absolute;left:{x}px;top:{y}px;width:{w}px;height:{h}px;"
                     f"background:{_rgb(scene.box_colour)}'></div>")
    height = f"height:{scene.height}px;" if scene.height else ""
    return (f"<!doctype html><html><head><style>html,body{{margin:0;background:{_rgb(scene.background)};"
            f"{height}overflow-x:hidden}}</style></head><body>{''.join(parts)}</body></html>")


def add_scene_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/scene")
    async def scene(request: web.Request) -> web.Response:
        shown = SCENES.get(request.query.get("name", ""), Scene())
        return web.Response(status=shown.status, text=render(shown), content_type="text/html")
