"""Validating a POST /v1/batches body: every item before anything happens, every problem named.

Each item is validated as a job body with ``defaults`` merged under it.  A
problem is named where the caller can fix it: ``requests[i].field`` for a field
of the item (or one the item lacks, such as ``url``), ``defaults.field`` for a
field that came from ``defaults``, once however many items inherit it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..capture.declaration import JOB
from ..capture.options import NON_OPTION_NAMES, CaptureOptions
from ..egress.errors import InvalidUrl
from ..egress.urls import parse_target_url
from ..errors import InvalidParameter

TOP_LEVEL = ("defaults", "requests", "webhook_url", *NON_OPTION_NAMES)
ITEM_WEBHOOK = "the batch sends one webhook when every item has ended: give webhook_url at the top level"
_ROOT = re.compile(r"^[^.\[]+")  # "s3.bucket" belongs to the option "s3"


@dataclass(frozen=True)
class BatchBody:
    items: list[dict[str, Any]]  # each item's stored options (defaults merged under it)
    parsed: list[CaptureOptions]  # the same, validated: for the entry checks (entry_check.py)
    inherited: list[frozenset[str]]  # each item's options that came from defaults
    webhook_url: str | None

    def namer(self, index: int) -> Callable[[str], str]:
        """How a problem with item ``index``'s option is named: where the caller can fix it."""
        return lambda field: f"defaults.{field}" if field in self.inherited[index] else f"requests[{index}].{field}"


def parse_batch_body(body: dict[str, Any], *, max_batch: int) -> BatchBody:
    problems: dict[str, str] = {name: "unknown parameter" for name in body if name not in TOP_LEVEL}
    defaults = body.get("defaults")
    if defaults is None:
        defaults = {}
    elif not isinstance(defaults, dict):
        problems["defaults"] = "must be a JSON object of capture options"
        defaults = {}
    requests = body.get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= max_batch:
        problems["requests"] = f"must be a list of 1 to {max_batch} JSON objects, one capture each"
        requests = []
    webhook_url = body.get("webhook_url")
    if webhook_url is not None:
        try:
            parse_target_url(webhook_url, what="webhook_url")
        except InvalidUrl as invalid:
            problems["webhook_url"] = invalid.message
    if "webhook_url" in defaults:
        problems["defaults.webhook_url"] = ITEM_WEBHOOK
    items: list[dict[str, Any]] = []
    parsed: list[CaptureOptions] = []
    inherited: list[frozenset[str]] = []
    for index, item in enumerate(requests):
        name = f"requests[{index}]"
        if not isinstance(item, dict):
            problems[name] = "must be a JSON object of capture options"
            continue
        if "webhook_url" in item:
            problems[f"{name}.webhook_url"] = ITEM_WEBHOOK
        merged = {k: v for k, v in {**defaults, **item}.items() if k not in NON_OPTION_NAMES and k != "webhook_url"}
        before = len(problems)
        url = merged.get("url")
        options: CaptureOptions | None = None
        try:
            options = CaptureOptions.from_json(merged, place=JOB)
        except InvalidParameter as invalid:
            for field, why in invalid.details.get("fields", {}).items():
                root = _ROOT.match(field)
                from_defaults = root is not None and root.group(0) in defaults and root.group(0) not in item
                problems[f"defaults.{field}" if from_defaults else f"{name}.{field}"] = why
        url_field = "defaults.url" if "url" in defaults and "url" not in item else f"{name}.url"
        if isinstance(url, str) and url_field not in problems:
            try:  # what a job's submission would refuse for its url (scheme, credentials, ...)
                parse_target_url(url, what=url_field)
            except InvalidUrl as invalid:
                problems[url_field] = invalid.message
        if len(problems) > before or options is None:  # (a problem of defaults is named once)
            continue
        items.append(merged)
        parsed.append(options)
        inherited.append(frozenset(option for option in defaults if option not in item))
    if problems:
        raise InvalidParameter.fields(problems)
    return BatchBody(items=items, parsed=parsed, inherited=inherited, webhook_url=webhook_url)
