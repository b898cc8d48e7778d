"""The OpenAPI pieces of /v1/batches (SPEC §4 Batches), merged into api/openapi.py's document.

Errors refer to the document's shared responses by status; an item's schema is a job's
options (from the option declarations) handed in by openapi.py.
"""

from __future__ import annotations

from typing import Any

from ..jobs.models import TERMINAL, UNFINISHED

BATCH_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/{status}"} for status in statuses}


def batch_paths(item_options: dict[str, Any], max_batch: int) -> dict[str, Any]:
    """The three operations; ``item_options``: name -> schema of what a job accepts; ``max_batch``:
    the running config's ``jobs.max_batch``."""
    options = {name: schema for name, schema in item_options.items() if name != "webhook_url"}
    item = {"type": "object", "additionalProperties": False, "properties": options}
    body = {"type": "object", "additionalProperties": False, "required": ["requests"], "properties": {
        "defaults": item | {"description": "options merged under every item (an item's own win)"},
        "requests": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": item,
                     "description": "one capture each (`url` or `html`, from the item or `defaults`); at most "
                                    "`jobs.max_batch` (100 by default)"},
        "webhook_url": {"type": "string", "description": "POSTed the batch JSON once every item has ended, signed "
                                                         "as job webhooks are; items send none of their own"},
        "api_key": {"type": "string"}}}
    batch_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/v1/batches": {"post": {
            "summary": "Enqueue many captures at once", "operationId": "createBatch",
            "description": "Every item is validated first (a 400 names each `requests[i].field` or "
                           "`defaults.field`); every credit is reserved in one step (422 `quota_exceeded` with "
                           "`needed` and `remaining`, nothing reserved); the items count against "
                           "`max_queued_jobs` all together (429). Items are jobs: `GET /v1/jobs/{id}` answers each.",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"202": {"description": "queued", "content": BATCH_JSON},
                          "200": {"description": "an idempotent replay of the original batch", "content": BATCH_JSON},
                          **_errors("400", "401", "408", "413", "422", "429", "500", "503")},
        }},
        "/v1/batches/{id}": {
            "get": {"summary": "Batch status and every item's result", "operationId": "getBatch",
                    "parameters": [batch_id],
                    "responses": {"200": {"description": "the batch", "content": BATCH_JSON},
                                  **_errors("401", "404", "429", "500", "503")}},
            "delete": {"summary": "Cancel the batch's queued items (refunded; running ones finish)",
                       "operationId": "cancelBatch", "parameters": [batch_id],
                       "responses": {"200": {"description": "the batch after canceling", "content": BATCH_JSON},
                                     **_errors("401", "404", "429", "500", "503")}},
        },
    }


BATCH_WEBHOOK = {"batchEnded": {"post": {
    "summary": "The final batch JSON once every item has ended, signed as jobFinished is",
    "parameters": [{"name": "X-Signature", "in": "header", "required": True, "schema": {"type": "string"}}],
    "requestBody": {"content": BATCH_JSON},
    "responses": {"200": {"description": "any 2xx acknowledges the delivery"}},
}}}


def batch_schemas(error_body: dict[str, Any]) -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    return {"Batch": {"type": "object", "required": [
        "id", "status", "total", "succeeded", "failed", "canceled", "items", "status_url", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "canceled"],
                       "description": "queued: no item started; running: some item not ended; done: every item "
                                      "ended; canceled: every item ended, some canceled"},
            "total": count, "succeeded": count, "failed": count, "canceled": count,
            "items": {"type": "array", "items": {"type": "object", "required": [
                "index", "job_id", "status", "result", "error"], "properties": {
                "index": count, "job_id": {"type": "string"},
                "status": {"type": "string", "enum": [*UNFINISHED, *TERMINAL]},
                "result": {"oneOf": [{"$ref": "#/components/schemas/CaptureResult"}, {"type": "null"}]},
                "error": {"oneOf": [error_body, {"type": "null"}]}}}},
            "status_url": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
            "finished_at": nullable_time, "webhook": {"type": "object"}}}}
