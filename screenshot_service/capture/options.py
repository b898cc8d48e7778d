"""CaptureOptions: every capture option validated in one place (SPEC §3).

The options are declared once, in option_table.py; this reads the declarations.
The same table parses a query string (everything is text) and a JSON body
(typed values).  Each problem is reported against its field name, all at once,
and unknown names are refused so that typos surface instead of being ignored.
Combinations that cannot both hold are reported against both names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from . import bounds, request_blocking
from .declaration import BODY, JOB, QUERY, Option, declared_options
from .devices import DEVICES
from .option_table import OptionTable
from .option_vocabulary import FORMATS, GROUPS, IMAGE_FORMATS, WAIT_UNTIL
from .parsers import Bad, BadFields
from .pdf_paper import paper_problems

__all__ = ["FORMATS", "OPTIONS", "OPTION_GROUPS", "WAIT_UNTIL", "CaptureOptions", "accepted_at", "refused_at"]

# Names accepted next to the options but not options themselves.
NON_OPTION_NAMES = ("api_key",)
# A preset supplies these unless the caller gave them (see devices.py for the precedence).
PRESET_FIELDS = {"width": "width", "height": "height", "device_scale_factor": "scale", "user_agent": "user_agent"}


@dataclass(frozen=True)
class CaptureOptions(OptionTable):
    @classmethod
    def known_names(cls) -> list[str]:
        return sorted([*OPTIONS, *NON_OPTION_NAMES])

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, place: str = QUERY) -> CaptureOptions:
        """From a query string: GET /v1/screenshot, or (``place=SIGNED_LINK``) a signed link."""
        return cls._parse(dict(query.items()), place=place)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], *, place: str = BODY) -> CaptureOptions:
        """From a JSON body: POST /v1/screenshot, or (``place=JOB``) POST /v1/jobs."""
        return cls._parse(dict(body), place=place)

    @classmethod
    def _parse(cls, raw: dict[str, Any], *, place: str) -> CaptureOptions:
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name in NON_OPTION_NAMES:
                continue
            spec = OPTIONS.get(name)
            if spec is None:
                problems[name] = "unknown parameter"
                continue
            if place not in spec.accepted:
                problems[name] = spec.refusal(place)
                continue
            if value is None and place in (BODY, JOB):
                continue  # JSON null means "the default", as if the name were absent
            try:
                values[name] = spec.parse(value)
            except BadFields as bad:  # a nested object (s3) names its own fields
                problems.update(bad.fields)
            except Bad as bad:
                problems[name] = str(bad)
            else:
                for restriction in spec.restrictions:
                    if restriction.place == place and values[name] not in restriction.values:
                        problems[name] = restriction.why
        _cross_check(values, problems)
        parsed = cls(**cls._apply_device(values))  # the fields given valid, defaults for the rest
        pdf_fine = not any(name.startswith("pdf_") for name in problems)  # else paper_problems would guess
        for name, why in {**parsed._bound_problems(), **(paper_problems(parsed) if pdf_fine else {})}.items():
            problems.setdefault(name, why)
        if problems:
            unknown = any(p == "unknown parameter" for p in problems.values())
            raise InvalidParameter.fields(problems, cls.known_names() if unknown else None)
        return parsed

    @staticmethod
    def _apply_device(values: dict[str, Any]) -> dict[str, Any]:
        device = DEVICES.get(values.get("device") or "")
        if device is not None:
            for name, attr in PRESET_FIELDS.items():
                values.setdefault(name, getattr(device, attr))
        return values

    def _bound_problems(self) -> dict[str, str]:
        """The pixel budget and texture limit (bounds.py) on the areas known before the page loads:
        the viewport and a clip.  An element and a full page are measured at capture."""
        problems: dict[str, str] = {}
        if self.format not in IMAGE_FORMATS:
            return problems
        why = bounds.area_problem(self.width, self.height, self.device_scale_factor, self.format)
        if why is not None:
            for name in ("width", "height", "device_scale_factor", *(("device",) if self.device else ())):
                problems[name] = f"the viewport of {why}"
        if self.clip is not None:
            why = bounds.area_problem(self.clip.width, self.clip.height, self.device_scale_factor, self.format)
            if why is not None:
                problems["clip"] = f"the clip of {why}"
        return problems

    def with_changes(self, **changes: Any) -> CaptureOptions:
        return dataclasses.replace(self, **changes)

    @property
    def content_type(self) -> str:
        from ..storage.base import CONTENT_TYPES

        return CONTENT_TYPES[self.format]

    @property
    def css_media(self) -> str:
        """The CSS media type the page is rendered with: ``media_type``, else by format."""
        return self.media_type or ("print" if self.format == "pdf" else "screen")

    @property
    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def cache_fingerprint(self) -> str:
        """SHA-256 (hex) of everything that shapes the result, for reusing an identical capture.

        Device presets are already resolved into width/height/scale/user agent, so
        ``device=iphone_15`` and the same values given by hand differ only by the
        ``device`` name (which also decides mobile and touch).  Header names are
        case-insensitive and unordered, so they are normalised.
        """
        return self._fingerprint("capture-v1", lambda spec: spec.in_fingerprint)

    def baseline_fingerprint(self, account: str) -> str:
        """SHA-256 (hex) of the account, the URL and the options that change the pixels: captures
        sharing it are pictures of the same thing, so one is the other's `compare_to=previous`."""
        return self._fingerprint(f"baseline-v1:{account}", lambda spec: spec.changes_image)

    def _fingerprint(self, tag: str, included: Callable[[Option], bool]) -> str:
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not included(OPTIONS[f.name]):
                continue
            value = getattr(self, f.name)
            if f.name == "media_type":
                value = self.css_media
            elif f.name == "headers":
                value = sorted((k.lower(), v) for k, v in value)
            elif f.name == "cookies":
                value = [dataclasses.asdict(c) for c in value]
            elif f.name == "clip" and value is not None:
                value = list(value)
            elif f.name == "proxy" and value is not None:
                value = value.identity  # a hash: the credentials never in readable form
            fields[f.name] = value
        canonical = json.dumps([tag, fields], sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


OPTIONS: dict[str, Option] = declared_options(CaptureOptions, GROUPS)
# (group title, its options in declaration order), as the API Tester shows them.
OPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (group, names) for group in GROUPS if (names := tuple(n for n, o in OPTIONS.items() if o.group == group))
)


def accepted_at(place: str) -> tuple[str, ...]:
    """The options a request at ``place`` (declaration.QUERY, BODY, JOB, SIGNED_LINK) may carry."""
    return tuple(name for name, spec in OPTIONS.items() if place in spec.accepted)


def refused_at(place: str) -> tuple[str, ...]:
    return tuple(name for name, spec in OPTIONS.items() if place not in spec.accepted)


def _cross_check(values: dict[str, Any], problems: dict[str, str]) -> None:
    if not values.get("url") and not values.get("html") and "url" not in problems and "html" not in problems:
        problems["url"] = "required (or html in a POST body)"
    blocks_target = request_blocking.target_problem(values.get("url"), values.get("block_requests", ()))
    if blocks_target:
        problems["block_requests"] = blocks_target
    for spec in OPTIONS.values():
        for conflict in spec.conflicts:
            if not (spec.name in values if conflict.named else _given(values, spec.name)):
                continue
            if conflict.unless and _value(values, conflict.unless[0]) == conflict.unless[1]:
                continue
            other = _value(values, conflict.other)
            if (other in conflict.values) if conflict.values else _given(values, conflict.other):
                problems[spec.name] = problems[conflict.other] = conflict.why.format(value=other, name=spec.name)


def _value(values: dict[str, Any], name: str) -> Any:
    return values.get(name, OPTIONS[name].default)


def _given(values: dict[str, Any], name: str) -> bool:
    value = values.get(name)
    return value is not None and value is not False and value != ()
