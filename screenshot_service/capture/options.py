"""CaptureOptions: every capture option validated in one place (SPEC §3).

The same table parses a query string (everything is text) and a JSON body
(typed values).  Each problem is reported against its field name, all at once,
and unknown names are refused so that typos surface instead of being ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter

FORMATS = ("png", "jpeg", "webp", "pdf")
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle0", "networkidle2")
RESPONSE_TYPES = ("json", "base64", "image")
# Names accepted next to the options but not options themselves.
NON_OPTION_NAMES = ("api_key",)


class _Bad(ValueError):
    pass


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Bad("must be a boolean (true/false/1/0)")


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise _Bad("must be an integer")
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit():
                raise _Bad(f"must be an integer from {lo} to {hi}")
            value = int(text)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise _Bad(f"must be an integer from {lo} to {hi}")
        if not lo <= value <= hi:
            raise _Bad(f"must be from {lo} to {hi}, got {value}")
        return value

    return parse


def _number(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise _Bad("must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _Bad(f"must be a number from {lo} to {hi}") from None
        if not lo <= number <= hi:
            raise _Bad(f"must be from {lo} to {hi}, got {value}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}")
        return value.lower()

    return parse


def _text(max_len: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad("must be a string")
        if len(value) > max_len:
            raise _Bad(f"must be at most {max_len} characters")
        return value

    return parse


@dataclass(frozen=True)
class CaptureOptions:
    url: str | None = None
    width: int = 1280
    height: int = 800
    device_scale_factor: float = 1.0
    full_page: bool = False
    max_height: int = 16384
    format: str = "png"
    quality: int = 80
    wait_until: str = "load"
    delay: int = 0
    timeout: int = 30
    response_type: str = "json"

    # name -> parser; the single source of truth for what is accepted
    @staticmethod
    def parsers() -> dict[str, Callable[[Any], Any]]:
        return {
            "url": _text(8192),
            "width": _int(100, 3840),
            "height": _int(100, 2160),
            "device_scale_factor": _number(1, 3),
            "full_page": _bool,
            "max_height": _int(100, 65536),
            "format": _choice(*FORMATS),
            "quality": _int(1, 100),
            "wait_until": _choice(*WAIT_UNTIL),
            "delay": _int(0, 10000),
            "timeout": _int(1, 30),
            "response_type": _choice(*RESPONSE_TYPES),
        }

    @classmethod
    def known_names(cls) -> list[str]:
        return sorted([*cls.parsers(), *NON_OPTION_NAMES])

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CaptureOptions:
        return cls._parse(dict(query.items()), source="query")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CaptureOptions:
        return cls._parse(dict(body), source="body")

    @classmethod
    def _parse(cls, raw: dict[str, Any], *, source: str) -> CaptureOptions:
        parsers = cls.parsers()
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name in NON_OPTION_NAMES:
                continue
            parser = parsers.get(name)
            if parser is None:
                problems[name] = "unknown parameter"
                continue
            try:
                values[name] = parser(value)
            except _Bad as bad:
                problems[name] = str(bad)
        if not values.get("url") and "url" not in problems:
            problems["url"] = "required"
        if problems:
            unknown = any(p == "unknown parameter" for p in problems.values())
            raise InvalidParameter.fields(problems, cls.known_names() if unknown else None)
        return cls(**values)

    def with_changes(self, **changes: Any) -> CaptureOptions:
        return dataclasses.replace(self, **changes)

    @property
    def content_type(self) -> str:
        from ..storage.base import CONTENT_TYPES

        return CONTENT_TYPES[self.format]
