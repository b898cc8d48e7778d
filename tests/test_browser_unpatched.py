"""The service drives Chromium through classes of its own: pyppeteer itself is left as released.

Another user of pyppeteer in the same process (a test's own browser, an embedding
application) gets pyppeteer's classes exactly as a process without the service
has them, even after the service has launched a browser and captured with it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pyppeteer

import screenshot_service
from screenshot_service.browser import launcher
from screenshot_service.browser.executable import find_executable
from tests.pyppeteer_reading import reading

BOUND = 30.0


def _import_every_service_module() -> None:
    for info in pkgutil.walk_packages(screenshot_service.__path__, "screenshot_service."):
        if info.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an optional extra (the bench's plots) not installed here
            if exc.name not in {"matplotlib", "tqdm"}:
                raise


async def test_pyppeteer_classes_are_the_released_ones_after_the_service_captured() -> None:
    _import_every_service_module()
    chromium = await launcher.launch(find_executable())
    try:
        _, page = await chromium.driver.new_context({}, BOUND)
        assert await page.evaluate("() => 6 * 7") == 42
    finally:
        await chromium.close()

    script = Path(__file__).with_name("pyppeteer_reading.py")
    done = await asyncio.to_thread(subprocess.run, [sys.executable, str(script)], capture_output=True, text=True,
                                   timeout=BOUND, check=True)
    fresh = json.loads(done.stdout)
    here = json.loads(json.dumps(reading()))
    assert "pyppeteer.connection.Connection" in fresh and "pyppeteer.page.Page" in fresh
    changed = {
        f"{cls}.{attr}": (fresh.get(cls, {}).get(attr), here.get(cls, {}).get(attr))
        for cls in set(fresh) | set(here)
        for attr in set(fresh.get(cls, {})) | set(here.get(cls, {}))
        if fresh.get(cls, {}).get(attr) != here.get(cls, {}).get(attr)
    }
    assert not changed, f"pyppeteer's classes were changed in this process (released, here): {changed}"
    assert pyppeteer.__version__ == "2.0.0"  # the release whose internals browser/ relies on (setup.cfg)
