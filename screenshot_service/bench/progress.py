"""A progress display: tqdm bars when the bench extra is installed, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """An outer bar over the run's steps and an inner bar over one step's requests."""

    def __init__(self, steps: int, enabled: bool = True) -> None:
        self._tqdm: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm
        self.enabled = enabled
        self._outer: Any = None
        self._inner: Any = None
        self.timings: list[dict[str, Any]] = []  # each finished step and how long it took
        self._step: tuple[str, float] | None = None
        if self._tqdm is not None:
            self._outer = self._tqdm(total=steps, desc="bench", unit="step", position=0, dynamic_ncols=True)

    def step(self, title: str, total: int | None) -> None:
        """Start a step of up to ``total`` requests."""
        self._close_inner()
        self._step = (title, time.perf_counter())
        if self._tqdm is not None:
            self._outer.set_postfix_str(title)
            self._inner = self._tqdm(total=total, desc=title, unit="req", position=1, leave=False,
                                     dynamic_ncols=True)
        elif self.enabled:
            print(f"bench: {title}", file=sys.stderr, flush=True)

    def tick(self, status: str = "") -> None:
        if self._inner is not None:
            self._inner.update(1)
            if status and status not in ("200", "ok"):
                self._inner.set_postfix_str(f"last error {status}")

    def done(self) -> None:
        self._close_inner()
        if self._step is not None:
            title, began = self._step
            self.timings.append({"step": " ".join(title.split()), "seconds": round(time.perf_counter() - began, 2)})
            self._step = None
        if self._outer is not None:
            self._outer.update(1)

    def note(self, text: str) -> None:
        if self._tqdm is not None:
            self._tqdm.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._close_inner()
        if self._outer is not None:
            self._outer.close()
            self._outer = None

    def _close_inner(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
