"""GET /v1/openapi.json: OpenAPI 3.1 for every endpoint, option, response and error.

The capture options' schemas, defaults, descriptions and the places that accept
them come from their declarations (capture/option_table.py), the same that
validate requests, so the document cannot drift from what the code accepts.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from .. import __version__
from ..appkeys import SETTINGS
from ..capture.declaration import BODY, JOB, QUERY, SIGNED_LINK
from ..capture.diff_options import DIFF_SCHEMA
from ..capture.facts import PAGE_FACTS_SCHEMA, WARNING_SCHEMA
from ..capture.metadata import METADATA_SCHEMA
from ..capture.options import FORMATS, OPTIONS, refused_at
from ..capture.parsers import schema_of
from ..capture.timing import STAGES
from ..config import JobsConfig, StorageConfig
from ..errors import error_codes
from .common import json_response
from .limit_headers import LIMIT_HEADERS
from .openapi_batches import BATCH_WEBHOOK, batch_paths, batch_schemas
from .openapi_monitors import monitor_paths, monitor_schemas, monitor_webhook

ERROR_CODES = error_codes()  # the one table, built from errors.py
# A signed link carries these instead of api_key (README, Signed links).
SIGNED_LINK_PARAMETERS = [
    {"name": "key_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Signed link: the signing key's public id (with `signature`, instead of `api_key`)."},
    {"name": "expires", "in": "query", "required": False, "schema": {"type": "integer"},
     "description": "Signed link: unix time (s) after which it answers 401 `signature_expired`."},
    {"name": "signature", "in": "query", "required": False,
     "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
     "description": "Signed link: lowercase hex HMAC-SHA256(signing_secret, canonical query); a signed link's "
                    "`response_type` defaults to `image` and it may not carry "
                    + ", ".join(f"`{name}`" for name in refused_at(SIGNED_LINK)) + "."},
]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "application/pdf")


def option_schemas(place: str | None = None) -> dict[str, Any]:
    """name -> JSON Schema (with default and description) of the options accepted at ``place``
    (declaration.QUERY, BODY, JOB); every option without restrictions when ``place`` is None."""
    schemas: dict[str, Any] = {}
    for name, spec in OPTIONS.items():
        if place is not None and place not in spec.accepted:
            continue
        schema = schema_of(spec.parse)
        for restriction in spec.restrictions:
            if restriction.place == place:
                schema["enum"] = list(restriction.values)
        if spec.default not in (None, ()):
            schema["default"] = spec.default
        schema["description"] = spec.description
        schemas[name] = schema
    return schemas


def _query_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    # In a query string everything is text: lists comma-separated, objects as JSON text.
    if schema.get("type") == "array":
        schema = {"type": "string", "description": schema["description"]}
    elif schema.get("type") == "object" or "oneOf" in schema:
        schema = {"type": "string", "description": schema["description"]}
    return {"name": name, "in": "query", "required": name == "url", "schema": schema,
            "description": schema.get("description", "")}


def _error(status: str) -> dict[str, Any]:
    headers = {"Retry-After": {"schema": {"type": "string"}}} if status in ("429", "503") else {}
    if status == "405":
        headers["Allow"] = {"schema": {"type": "string"}}
    return {
        "description": ", ".join(ERROR_CODES[status]),
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _error(status) for status in statuses}


def _limit_headers() -> dict[str, Any]:
    return {name: {"schema": {"type": "string"}} for name in LIMIT_HEADERS}


SERVER_TIMING_DOC = (f"W3C Server Timing: milliseconds per stage that ran ({', '.join(STAGES)}) and the total; "
                     "also on errors once the caller is authenticated")
CAPTURE_ERRORS = ("400", "401", "408", "413", "422", "429", "500", "502", "503", "504")


def _capture_ok() -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/CaptureResult"}}}
    for media in IMAGE_TYPES:
        content[media] = {"schema": {"type": "string", "format": "binary"}}
    headers = _limit_headers() | {"X-Cache": {"schema": {"type": "string", "enum": ["HIT", "MISS"]}},
                                  "X-Capture-Warnings": {"description": "response_type=image: the warnings' codes, "
                                                         "comma-separated", "schema": {"type": "string"}},
                                  "X-Capture-Id": {"description": "response_type=image: the result's id",
                                                   "schema": {"type": "string"}},
                                  "X-Captured-At": {"description": "response_type=image: the result's captured_at",
                                                    "schema": {"type": "string"}},
                                  "X-Diff-Changed-Ratio": {"description": "response_type=image with compare_to "
                                                           "and a baseline: diff.changed_ratio",
                                                           "schema": {"type": "string"}},
                                  "X-Diff-Image-Url": {"description": "response_type=image with compare_to and "
                                                       "a baseline: diff.image_url", "schema": {"type": "string"}},
                                  "X-Diff-Changed-Pixels": {"description": "response_type=image with compare_to "
                                                            "and a baseline: diff.changed_pixels",
                                                            "schema": {"type": "string"}},
                                  "X-Diff-Baseline-Id": {"description": "response_type=image with compare_to and "
                                                         "a baseline: diff.baseline.id", "schema": {"type": "string"}},
                                  "X-Diff-Size-Changed": {"description": "response_type=image: `true` when the "
                                                          "images' sizes differ (diff.size_changed)",
                                                          "schema": {"type": "string"}},
                                  "Server-Timing": {"description": SERVER_TIMING_DOC, "schema": {"type": "string"}}}
    return {"description": "the capture (JSON, JSON with base64, or the bytes per response_type)",
            "headers": headers, "content": content}


@functools.cache
def build(max_batch: int = JobsConfig().max_batch, max_interval: int = StorageConfig().retention_days * 86400
          ) -> dict[str, Any]:
    """The document; ``max_batch`` and ``max_interval`` from the running config (their defaults without one)."""
    # Exactly one of url and html; other combinations the API refuses are listed in each 400.
    one_target = [{"required": ["url"], "not": {"required": ["html"]}},
                  {"required": ["html"], "not": {"required": ["url"]}}]
    capture_body = {"type": "object", "additionalProperties": False, "oneOf": one_target,
                    "properties": option_schemas(BODY) | {"api_key": {"type": "string"}}}
    job_body = {"type": "object", "additionalProperties": False, "oneOf": one_target,
                "properties": option_schemas(JOB) | {"api_key": {"type": "string"}}}
    query = [_query_parameter(name, schema) for name, schema in option_schemas(QUERY).items()]
    query.append({"name": "api_key", "in": "query", "required": False, "schema": {"type": "string"}})
    query += SIGNED_LINK_PARAMETERS
    job_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    job_json = {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "screenshot_service", "version": __version__,
                 "description": "Self-hosted website screenshot API on a warm headless Chromium pool."},
        "security": [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}],
        "paths": {
            "/v1/screenshot": {
                "get": {"summary": "Capture a page (legacy GET: options as query parameters)",
                        "operationId": "screenshotGet", "parameters": query,
                        "description": "Each parameter at most once: a name given twice is 400 "
                                       "`invalid_parameter` naming it (on a signed link too).",
                        "responses": {"200": _capture_ok(), **_errors(*CAPTURE_ERRORS)}},
                "post": {"summary": "Capture a page (options in a JSON body)", "operationId": "screenshotPost",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": capture_body}}},
                         "responses": {"200": _capture_ok(), **_errors(*CAPTURE_ERRORS)}},
            },
            "/v1/jobs": {"post": {
                "summary": "Enqueue an asynchronous capture", "operationId": "createJob",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": job_body}}},
                "responses": {
                    "202": {"description": "queued", "headers": _limit_headers(), "content": job_json},
                    "200": {"description": "an idempotent replay of the original job", "content": job_json},
                    **_errors("400", "401", "408", "413", "422", "429", "500", "503"),
                },
            }},
            "/v1/jobs/{id}": {
                "get": {"summary": "Job status and result", "operationId": "getJob", "parameters": [job_id],
                        "responses": {"200": {"description": "the job", "content": job_json},
                                      **_errors("401", "404", "429", "500", "503")}},
                "delete": {"summary": "Cancel a queued job", "operationId": "cancelJob", "parameters": [job_id],
                           "responses": {"200": {"description": "canceled", "content": job_json},
                                         **_errors("401", "404", "409", "429", "500", "503")}},
            },
            **batch_paths(option_schemas(JOB), max_batch),
            **monitor_paths(option_schemas, _errors, max_interval),
            "/v1/files/{name}": {"get": {
                "summary": "A stored capture (local backend)", "operationId": "getFile", "security": [],
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the image", "content": {
                    m: {"schema": {"type": "string", "format": "binary"}} for m in IMAGE_TYPES}},
                    **_errors("404")},
            }},
            "/v1/usage": {"get": {
                "summary": "The calling key's plan, rate and quota", "operationId": "getUsage",
                "responses": {"200": {"description": "usage", "headers": _limit_headers(), "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Usage"}}}},
                    **_errors("401", "429", "500", "503")},
            }},
            "/v1/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "security": [],
                                         "responses": {"200": {"description": "OpenAPI 3.1",
                                                               "content": {"application/json": {}}}}}},
            "/": {"get": {"summary": "The API Tester page", "operationId": "tester", "security": [],
                          "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "security": [],
                                 "responses": {"200": {"description": "alive", "content": {"application/json": {}}}}}},
            "/readyz": {"get": {"summary": "Readiness", "operationId": "readyz", "security": [],
                                "responses": {"200": {"description": "ready", "content": {"application/json": {}}},
                                              "503": {"description": "draining, browser down or state store down",
                                                      "content": {"application/json": {}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics", "security": [],
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {}}}}}},
        },
        "webhooks": {"jobFinished": {"post": {
            "summary": "The final job JSON, signed with X-Signature: t=TIMESTAMP,v1=HEX(HMAC-SHA256(secret, TIMESTAMP.body))",
            "parameters": [{"name": "X-Signature", "in": "header", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"content": job_json},
            "responses": {"200": {"description": "any 2xx acknowledges the delivery"}},
        }}, **BATCH_WEBHOOK} | monitor_webhook(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
            "schemas": _schemas(),
            # Every error by status, whatever the path: aiohttp's own too (405 on any path, a
            # request it cannot parse is a 400 malformed_request).
            "responses": {status: _error(status) for status in ERROR_CODES},
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    error_body = {"type": "object", "required": ["status", "code", "message"], "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "object"}}}
    return batch_schemas(error_body) | {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": error_body}},
        "CaptureResult": {"type": "object", "required": [
            "id", "captured_at", "url", "expires_at", "format", "width", "height", "bytes", "took_ms", "cached",
            "blocked_requests", "page", "warnings"],
            "properties": {
                "id": {"type": "string", "description": "this capture (`cap_…`; a cached answer: the original's)"},
                "captured_at": {"type": "string", "format": "date-time"}, "diff": DIFF_SCHEMA,
                "url": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "enum": list(FORMATS)},
                "width": {"type": "integer"}, "height": {"type": "integer"}, "bytes": {"type": "integer"},
                "took_ms": {"type": "integer"}, "cached": {"type": "boolean"},
                "blocked_requests": {"type": "integer"}, "clamped": {"type": "boolean"},
                "pages": {"type": "integer", "minimum": 1, "description": "a pdf's page count (pdf only)"},
                "page": PAGE_FACTS_SCHEMA, "warnings": {"type": "array", "items": WARNING_SCHEMA},
                "image_base64": {"type": "string", "description": "with response_type=base64 (the content "
                                                                  "itself for format=html/markdown/text)"},
                "content": {"type": "object", "description": "with extract: each kind's stored file",
                            "additionalProperties": {"type": "object", "required": ["url", "bytes"], "properties": {
                                "url": {"type": "string"}, "bytes": {"type": "integer"}}}},
                "metadata": METADATA_SCHEMA}},
        "Job": {"type": "object", "required": ["id", "status", "status_url", "created_at", "result", "error"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "canceled"]},
                    "status_url": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                    "started_at": nullable_time, "finished_at": nullable_time,
                    "result": {"oneOf": [{"$ref": "#/components/schemas/CaptureResult"}, {"type": "null"}]},
                    "error": {"oneOf": [error_body, {"type": "null"}]},
                    "webhook": {"type": "object"}, "batch_id": {"type": "string"}}},
        **monitor_schemas(error_body),
        "Usage": {"type": "object", "required": ["key_id", "plan", "rate", "quota"], "properties": {
            "key_id": {"type": "string"}, "plan": {"type": "string"}, "concurrency": {"type": "integer"},
            "max_queued_jobs": {"type": "integer"},
            "rate": {"type": "object", "properties": {"requests_per_second": {"type": "number"},
                                                      "burst": {"type": "integer"}}},
            "quota": {"type": "object", "properties": {
                "period": {"type": "string"}, "limit": {"type": "integer"}, "used": {"type": "integer"},
                "remaining": {"type": "integer"}, "resets_at": {"type": "string", "format": "date-time"}}}}},
    }


async def get_openapi(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return json_response(build(settings.jobs.max_batch, settings.storage.retention_days * 86400))

