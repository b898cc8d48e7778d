"""Where a capture's time goes: its stages, timed with ``time.perf_counter``, and the
``Server-Timing`` header (W3C Server Timing) that reports them.

A request's stages are disjoint stretches of its handling, each counted from where it
starts to where it ends, so their sum never exceeds ``total`` (arrival at the handler to
the answer's headers).  What lies in no stage (reading a body, parsing options, rendering
the answer) is ``total`` minus their sum.  A stage that did not run is left out: a cache
hit has no navigation.  Stage durations are rounded down and ``total`` up, so the header
keeps that inequality exactly.
"""

from __future__ import annotations

import math
import re
import time
from contextvars import ContextVar
from types import TracebackType
from typing import Protocol

AUTH = "auth"  # the key (or signed link) checked and its request counted against the rate
CACHE = "cache"  # the opt-in cache: the lookup, and the write after a fresh capture
ADMISSION = "admission"  # a concurrency slot and a credit for the key, then a warm page of the pool
NAVIGATION = "navigation"  # the egress check of the URL, the page prepared and loaded until ready
CAPTURE = "capture"  # the screenshot (or PDF) and the page's facts and checks
STORE = "store"  # the image written to storage (ours or the caller's bucket)
SETTLE = "settle"  # the credit committed and the concurrency slot released
STAGES = (AUTH, CACHE, ADMISSION, NAVIGATION, CAPTURE, STORE, SETTLE)  # in the order they run
TOTAL = "total"

_DECIMALS = 2  # of a millisecond: 10 µs


class StageObserver(Protocol):
    def stage(self, name: str, began: float, ended: float, *, failed: bool = False) -> None:
        """``name`` ran from ``began`` to ``ended`` (``perf_counter`` readings); ``failed``: the
        request failed in it."""


# Told of every stage counted by the timings made where it is set (a request's trace, tracing.py).
STAGE_OBSERVER: ContextVar[StageObserver | None] = ContextVar("stage_observer", default=None)


class StageTimings:
    """The stages of one request; ``began`` is its arrival at the handler."""

    __slots__ = ("_observer", "_running", "began", "spent")

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.spent: dict[str, float] = {}  # seconds by stage
        self._running: tuple[str, float] | None = None  # the stage started and not yet counted
        self._observer = STAGE_OBSERVER.get()

    def start(self, stage: str) -> float:
        """Note that ``stage`` starts now; returns the ``perf_counter`` reading for ``add``."""
        now = time.perf_counter()
        self._running = (stage, now)
        return now

    def add(self, stage: str, since: float) -> float:
        """Count the time from ``since`` (a ``perf_counter`` reading) until now towards
        ``stage``; returns those seconds."""
        now = time.perf_counter()
        seconds = now - since
        self.spent[stage] = self.spent.get(stage, 0.0) + seconds
        self._running = None
        if self._observer is not None:
            self._observer.stage(stage, since, now)
        return seconds

    def seconds_in(self, *stages: str) -> float:
        """Seconds spent so far in ``stages``, the one running now included."""
        spent = sum(self.spent.get(stage, 0.0) for stage in stages)
        if self._running is not None and self._running[0] in stages:
            spent += time.perf_counter() - self._running[1]
        return spent

    def observe_failed_stage(self) -> None:
        """Tell the observer of the stage a failure cut short (never counted by ``add``), until now;
        it stays running for ``header``, which counts it until the answer goes out."""
        if self._observer is not None and self._running is not None:
            name, since = self._running
            self._observer.stage(name, since, time.perf_counter(), failed=True)

    def stage(self, name: str) -> Stage:
        """``with timings.stage(AUTH): ...``: the block's time, counted whether it returns or raises."""
        return Stage(self, name)

    def header(self) -> str:
        """The ``Server-Timing`` value, total up to now: ``auth;dur=0.41, ..., total;dur=61.07``.

        A stage started and never counted is the one a failed capture failed in (its error
        propagated past ``add``): it counts until now, so a 504 shows what ran out of time."""
        now = time.perf_counter()
        spent = dict(self.spent)
        if self._running is not None:
            name, since = self._running
            spent[name] = spent.get(name, 0.0) + now - since
        scale = 10**_DECIMALS
        parts = [f"{name};dur={math.floor(spent[name] * 1000 * scale) / scale:.{_DECIMALS}f}"
                 for name in STAGES if name in spent]
        total = math.ceil((now - self.began) * 1000 * scale) / scale
        parts.append(f"{TOTAL};dur={total:.{_DECIMALS}f}")
        return ", ".join(parts)


class Stage:
    __slots__ = ("_began", "_name", "_timings")

    def __init__(self, timings: StageTimings, name: str) -> None:
        self._timings = timings
        self._name = name
        self._began = 0.0

    def __enter__(self) -> None:
        self._began = self._timings.start(self._name)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._timings.add(self._name, self._began)


# RFC 9110 token; a parameter's value is a token or a quoted string.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = rf'(?:{_TOKEN}|"(?:[^"\\]|\\.)*")'
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})\s*(?:=\s*({_VALUE}))?")
_NAME = re.compile(rf"\s*({_TOKEN})")
_SEPARATOR = re.compile(r"\s*(?:,|\Z)")
_EMPTY = " \t,"  # around list elements, and empty elements (allowed by RFC 9110 §5.6.1)


def parse_server_timing(value: str) -> dict[str, float]:
    """Milliseconds by metric name from a ``Server-Timing`` value (a metric without ``dur`` is 0;
    of a repeated metric or parameter the first counts).  ValueError when it is not the syntax."""
    metrics: dict[str, float] = {}
    at = 0
    while (at := _skip_empty(value, at)) < len(value):
        name = _NAME.match(value, at)
        if name is None:
            raise ValueError(f"Server-Timing: no metric name at {value[at:]!r}")
        at = name.end()
        params: dict[str, str] = {}
        while (param := _PARAM.match(value, at)) is not None:
            params.setdefault(param.group(1).lower(), (param.group(2) or "").strip('"'))
            at = param.end()
        end = _SEPARATOR.match(value, at)
        if end is None:
            raise ValueError(f"Server-Timing: unexpected {value[at:]!r}")
        at = end.end()
        try:
            metrics.setdefault(name.group(1), float(params.get("dur") or 0.0))
        except ValueError:
            raise ValueError(f"Server-Timing: {name.group(1)}'s dur is not a number") from None
    return metrics


def _skip_empty(value: str, at: int) -> int:
    while at < len(value) and value[at] in _EMPTY:
        at += 1
    return at
