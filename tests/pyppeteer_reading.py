"""Where every attribute of every class pyppeteer defines comes from.

``python tests/pyppeteer_reading.py`` prints the reading as JSON from an
interpreter that imports nothing but pyppeteer: what its classes are as released.
An attribute assigned from outside pyppeteer names another module or qualified
name there, or is not in that reading at all.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from typing import Any

import pyppeteer

SKIPPED = frozenset({"__dict__", "__weakref__", "__doc__", "__annotations__"})


def _origin(value: Any) -> list[str | None]:
    value = getattr(value, "__func__", value)  # staticmethod, classmethod
    value = getattr(value, "fget", value)  # property
    return [getattr(value, "__module__", None), getattr(value, "__qualname__", type(value).__name__)]


def reading() -> dict[str, dict[str, list[str | None]]]:
    found = {}
    for info in pkgutil.walk_packages(pyppeteer.__path__, "pyppeteer."):
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = {
                    attr: _origin(value) for attr, value in sorted(vars(cls).items()) if attr not in SKIPPED
                }
    return found


if __name__ == "__main__":
    import sys

    assert not any(name.startswith("screenshot_service") for name in sys.modules)
    print(json.dumps(reading()))
