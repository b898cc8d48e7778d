"""The monitors' part of /v1/openapi.json (SPEC §4 "Monitors"): paths, schemas, the webhook."""

from __future__ import annotations

from typing import Any

from ..capture.declaration import JOB
from ..monitors.models import MAX_RUNS_KEPT, SECRET_OPTIONS
from ..monitors.requests import DEFAULT_THRESHOLD, MAX_INTERVAL, MAX_NAME, REFUSED

Errors = dict[str, Any]
MONITOR = {"$ref": "#/components/schemas/Monitor"}
MONITOR_JSON = {"application/json": {"schema": MONITOR}}


def monitor_body(option_schemas: dict[str, Any], max_interval: int) -> dict[str, Any]:
    """POST /v1/monitors: a job's options (minus what the monitor sets itself) and its own fields;
    ``max_interval``: the captures' retention (each run compares with the previous one's capture)."""
    options = {name: schema for name, schema in option_schemas.items() if name not in REFUSED}
    return {"type": "object", "additionalProperties": False, "required": ["url", "interval", "webhook_url"],
            "properties": options | {
                "api_key": {"type": "string"},
                "interval": {"type": "integer", "minimum": 1, "maximum": min(max_interval, MAX_INTERVAL),
                             "description": "seconds between runs, at least monitors.min_interval_seconds, at "
                                            "most storage.retention_days (the baseline must still be kept)"},
                "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": DEFAULT_THRESHOLD,
                              "description": "diff.changed_ratio at or above which the webhook is sent"},
                "name": {"type": "string", "maxLength": MAX_NAME}}}  # fmt: skip


def monitor_paths(option_schemas_at: Any, errors: Any, max_interval: int) -> dict[str, Any]:
    monitor_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    body = monitor_body(option_schemas_at(JOB), max_interval)
    listed = {"application/json": {"schema": {"type": "object", "required": ["monitors"], "properties": {
        "monitors": {"type": "array", "items": MONITOR}}}}}
    with_runs = {"application/json": {"schema": {"$ref": "#/components/schemas/MonitorWithRuns"}}}
    return {
        "/v1/monitors": {
            "post": {"summary": "Watch a page: a capture every interval, a signed webhook when it changed",
                     "operationId": "createMonitor",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"201": {"description": "created; the first run (the baseline) is due at once",
                                           "headers": {"Location": {"schema": {"type": "string"}}},
                                           "content": MONITOR_JSON},
                                   **errors("400", "401", "408", "413", "422", "429", "500", "503")}},
            "get": {"summary": "The key's monitors", "operationId": "listMonitors",
                    "responses": {"200": {"description": "oldest first", "content": listed},
                                  **errors("401", "429", "500", "503")}},
        },
        "/v1/monitors/{id}": {
            "get": {"summary": f"A monitor and its last {MAX_RUNS_KEPT} runs, newest first",
                    "operationId": "getMonitor", "parameters": [monitor_id],
                    "responses": {"200": {"description": "the monitor", "content": with_runs},
                                  **errors("401", "404", "429", "500", "503")}},
            "delete": {"summary": "Stop and remove a monitor", "operationId": "deleteMonitor",
                       "parameters": [monitor_id],
                       "responses": {"200": {"description": "removed: the monitor as it was", "content": MONITOR_JSON},
                                     **errors("401", "404", "429", "500", "503")}},
        },
    }


def monitor_webhook() -> dict[str, Any]:
    notice = {"type": "object", "required": ["monitor", "run"],
              "properties": {"monitor": MONITOR, "run": {"$ref": "#/components/schemas/MonitorRun"}}}
    return {"monitorChanged": {"post": {
        "summary": "A run's diff.changed_ratio reached the threshold; signed like jobFinished (X-Signature)",
        "parameters": [{"name": "X-Signature", "in": "header", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/json": {"schema": notice}}},
        "responses": {"200": {"description": "any 2xx acknowledges the delivery"}},
    }}}


def monitor_schemas(error_body: dict[str, Any]) -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    run = {"type": "object", "required": ["at", "scheduled_at", "status", "changed_ratio", "result", "error"],
           "properties": {
               "at": time, "scheduled_at": time, "status": {"type": "string", "enum": ["succeeded", "failed"]},
               "changed_ratio": {"type": ["number", "null"]}, "notified": {"type": "boolean"},
               "result": {"oneOf": [{"$ref": "#/components/schemas/CaptureResult"}, {"type": "null"}]},
               "error": {"oneOf": [error_body, {"type": "null"}]}}}  # fmt: skip
    nullable_run = {"oneOf": [{"$ref": "#/components/schemas/MonitorRun"}, {"type": "null"}]}
    monitor = {"type": "object", "required": ["id", "status_url", "name", "url", "interval", "threshold",
                                              "next_run_at", "created_at", "last_run", "last_change"],
               "properties": {
                   "id": {"type": "string"}, "status_url": {"type": "string"}, "name": {"type": ["string", "null"]},
                   "url": {"type": "string"}, "interval": {"type": "integer"}, "threshold": {"type": "number"},
                   "webhook_url": {"type": "string"},
                   "options": {"type": "object", "description": "the capture options given, but "
                               + ", ".join(SECRET_OPTIONS) + " (kept to run it, never shown)"},
                   "next_run_at": time, "created_at": time, "last_run": nullable_run,
                   "last_change": {**nullable_run, "description": "the last run that sent the webhook"}}}  # fmt: skip
    with_runs = {"allOf": [{"$ref": "#/components/schemas/Monitor"}, {
        "type": "object", "required": ["runs"],
        "properties": {"runs": {"type": "array", "maxItems": MAX_RUNS_KEPT,
                                "items": {"$ref": "#/components/schemas/MonitorRun"}}}}]}  # fmt: skip
    return {"Monitor": monitor, "MonitorRun": run, "MonitorWithRuns": with_runs}
