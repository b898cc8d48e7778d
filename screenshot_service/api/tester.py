"""GET /: the API Tester, one self-contained HTML page shipped as package data.

The page loads nothing from anywhere else (no CDN, no web fonts), so a strict
Content-Security-Policy costs nothing; images may come from any http(s) origin
because a configured ``public_url`` or S3 bucket serves the captures.

Its form is not written by hand: the server renders the options' declarations
(capture/option_table.py: the schemas, defaults and descriptions that
/v1/openapi.json is built from, their groups and where each is accepted) into
the page as JSON, and the page's script builds one field per option from it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from ..capture.action_parsers import STEP_TEMPLATES
from ..capture.declaration import BODY, QUERY, SIGNED_LINK
from ..capture.options import OPTION_GROUPS, accepted_at, refused_at
from .openapi import option_schemas

CSP = (
    "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the captured URL never leaks to image hosts
    "Cache-Control": "no-cache",
}
META_SLOT = b"/*OPTIONS*/null"
# A string this long or longer is a document (html, css, js): a text area, not a line.
LONG_TEXT = 65536
# More choices than this are only listed in the field's menu, not in its range text.
MAX_LISTED_CHOICES = 6


def install_tester(app: web.Application) -> None:
    """Route GET / to the page (idempotent); build it now so a broken install fails at start-up."""
    if any(resource.canonical == "/" for resource in app.router.resources()):
        return
    page = render_page()

    async def tester_page(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=HEADERS)

    app.router.add_get("/", tester_page)


def render_page() -> bytes:
    template = resources.files("screenshot_service.api").joinpath("tester/index.html").read_bytes()
    if template.count(META_SLOT) != 1:
        raise RuntimeError("tester/index.html must hold the option slot exactly once")
    # Inside <script type="application/json"> only "<" can end the element early.
    meta = json.dumps(page_metadata(), ensure_ascii=False).replace("<", "\\u003c")
    return template.replace(META_SLOT, meta.encode("utf-8"))


def page_metadata() -> dict[str, Any]:
    """The option table as the page needs it: groups in order, each option's field, text and range."""
    schemas = option_schemas()
    return {
        "groups": [
            {"title": title, "options": [field(name, schemas[name]) for name in names]}
            for title, names in OPTION_GROUPS
        ],
        "post_only": [name for name in refused_at(QUERY) if name in accepted_at(BODY)],
        "jobs_only": list(refused_at(BODY)),  # sent to POST /v1/jobs
        "signed_refused": list(refused_at(SIGNED_LINK)),  # what a signed link may not carry
        "step_templates": {"actions": STEP_TEMPLATES},  # list options edited with "add step" buttons
    }


def field(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One option's form field: its kind of input, description, range text and default."""
    kind = _kind(schema)
    spec: dict[str, Any] = {"name": name, "kind": kind, "description": schema.get("description", ""),
                            "range": range_text(schema)}
    if "default" in schema:
        spec["default"] = schema["default"]
    if "enum" in schema:
        spec["choices"] = schema["enum"]
    if kind in ("integer", "number"):
        spec["min"], spec["max"] = schema["minimum"], schema["maximum"]
    placeholder = _placeholder(schema)
    if placeholder:
        spec["placeholder"] = placeholder
    return spec


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "boolean":
        return "flag"
    if "enum" in schema:
        return "choice"
    if kind in ("integer", "number"):
        return str(kind)
    if kind == "array" and schema.get("items", {}).get("type") == "string":
        return "list"  # one entry per line, sent as a JSON list
    if kind in ("object", "array"):
        return "json"
    if kind == "string" and schema.get("maxLength", 0) >= LONG_TEXT:
        return "textarea"
    return "text"  # plain strings, and the oneOf forms whose text shape (x,y,width,height) is typed as is


def range_text(schema: dict[str, Any]) -> str:
    """What the option accepts, in words, from its JSON Schema."""
    if "minimum" in schema and "maximum" in schema:
        return f"{_number(schema['minimum'])}\u2013{_number(schema['maximum'])}"  # an en dash
    if "enum" in schema:
        choices = schema["enum"]
        return " | ".join(choices) if len(choices) <= MAX_LISTED_CHOICES else f"one of {len(choices)}"
    kind = schema.get("type")
    if "oneOf" in schema:
        shapes = [s.get("description") for s in schema["oneOf"] if s.get("type") == "string"]
        return " or ".join([*(s for s in shapes if s), "a JSON object"])
    if kind == "array" and "enum" in schema.get("items", {}):
        return f"any of {' | '.join(schema['items']['enum'])}, one per line"
    if kind == "array":
        items = schema.get("items", {})
        what = f"{items.get('description', 'CSS selectors')}, one per line" if items.get("type") == "string" \
            else "JSON list"
        return f"{what}, at most {schema['maxItems']}"
    if kind == "object":
        if "maxProperties" in schema:
            return f"JSON object, at most {schema['maxProperties']} entries"
        required = set(schema.get("required", ()))
        return "JSON object: " + ", ".join(k if k in required else k + "?" for k in schema.get("properties", {}))
    if schema.get("format") == "uri":
        return "http or https URL"
    if "maxLength" in schema:
        return f"text, at most {schema['maxLength']} characters"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _placeholder(schema: dict[str, Any]) -> str:
    if "default" in schema and schema.get("type") != "boolean":
        default = schema["default"]
        return _number(default) if isinstance(default, int | float) else str(default)
    if schema.get("examples"):
        return str(schema["examples"][0])
    for shape in schema.get("oneOf", ()):
        if shape.get("type") == "string" and shape.get("description"):
            return str(shape["description"])
    return ""
