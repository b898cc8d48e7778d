"""A POST /v1/monitors body, validated: the monitor's own fields, then the capture options as a
job's (capture/option_table.py), every problem named by its field and reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..capture.declaration import JOB
from ..capture.option_vocabulary import NOT_IMAGE
from ..capture.options import NON_OPTION_NAMES, CaptureOptions
from ..errors import InvalidParameter

MAX_INTERVAL = 366 * 86400  # a year: a longer schedule is a mistake, not a monitor
MAX_NAME = 200
DEFAULT_THRESHOLD = 0.001
MONITOR_FIELDS = ("interval", "threshold", "webhook_url", "name")
# The monitor decides these itself: it compares each run with its previous good one, and it
# must capture afresh every time (a cached result would never change).
REFUSED = {
    "compare_to": "set by the monitor: each run is compared with its previous good run",
    "cache": "a monitor captures afresh every run; leave cache out",
    "cache_ttl": "a monitor captures afresh every run; leave cache_ttl out",
    "html": "a monitor watches a page by its url; html cannot change between runs",
}


@dataclass(frozen=True)
class MonitorRequest:
    options: dict[str, Any]  # capture options as given (url included): what each run captures
    interval: int
    threshold: float
    webhook_url: str
    name: str | None
    url: str
    parsed: CaptureOptions  # the options validated, for the entry checks (jobs/entry_check.py)


def parse_monitor_body(body: dict[str, Any], *, min_interval: int, max_interval: int = MAX_INTERVAL) -> MonitorRequest:
    """``max_interval``: the captures' retention at most, so the previous run's capture (the
    baseline) still exists when the next run compares with it."""
    problems: dict[str, str] = {}
    interval = _interval(body.get("interval"), min_interval, min(max_interval, MAX_INTERVAL), problems)
    threshold = _threshold(body.get("threshold", DEFAULT_THRESHOLD), problems)
    name = _name(body.get("name"), problems)
    for field, why in REFUSED.items():
        if body.get(field) not in (None, False):
            problems[field] = why
    if not isinstance(body.get("url"), str) or not body.get("url"):
        problems.setdefault("url", "required: the page the monitor watches")
    if body.get("webhook_url") in (None, ""):
        problems["webhook_url"] = "required: the URL POSTed a signed notice when the page changed"
    if body.get("format") in NOT_IMAGE:
        problems["format"] = f"a monitor compares images; format={body.get('format')} cannot be compared"
    options = {k: v for k, v in body.items() if k not in (*MONITOR_FIELDS, *NON_OPTION_NAMES)}
    known: list[str] | None = None
    parsed: CaptureOptions | None = None
    try:
        parsed = CaptureOptions.from_json(
            {k: v for k, v in body.items() if k not in REFUSED and k not in ("interval", "threshold", "name")},
            place=JOB,
        )
    except InvalidParameter as invalid:
        for field, why in invalid.details.get("fields", {}).items():
            problems.setdefault(field, why)
        if "known_parameters" in invalid.details:
            known = sorted({*invalid.details["known_parameters"], *MONITOR_FIELDS})
    if problems or parsed is None:
        raise InvalidParameter.fields(problems, known)
    assert parsed.webhook_url is not None and parsed.url is not None
    return MonitorRequest(options, interval, threshold, parsed.webhook_url, name, parsed.url, parsed)


def _interval(value: Any, min_interval: int, max_interval: int, problems: dict[str, str]) -> int:
    if value is None:
        problems["interval"] = f"required: seconds between runs, at least {min_interval}"
    elif isinstance(value, bool) or not isinstance(value, int):
        problems["interval"] = "must be a whole number of seconds"
    elif not min_interval <= value <= max_interval:
        problems["interval"] = (f"must be between {min_interval} and {max_interval} seconds (at most the captures' "
                                "retention, storage.retention_days: each run compares with the previous one)")
    else:
        return value
    return 0


def _threshold(value: Any, problems: dict[str, str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        problems["threshold"] = "must be a number from 0 to 1 (the changed fraction of the image that notifies)"
        return 0.0
    return float(value)


def _name(value: Any, problems: dict[str, str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME or "\n" in value:
        problems["name"] = f"must be a single-line string of at most {MAX_NAME} characters"
        return None
    return value
