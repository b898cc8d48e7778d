"""Helpers for the job tests: an app with jobs installed, a webhook receiver, a real process.

``python -m tests.jobs_helpers serve CONFIG [LEASE_SECONDS]`` runs the service the way
``screenshot-service serve`` does, plus ``install_jobs`` (with a shorter job lease when
given, so a killed process's jobs are taken over in seconds, not production's 30), so a
test can SIGKILL a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from screenshot_service import config, config_loading
from screenshot_service.app import SHUTDOWN_GRACE_SECONDS, create_app
from screenshot_service.appkeys import STATE
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.jobs.install import install_jobs
from screenshot_service.limits.keys import create_key
from screenshot_service.limits.quota import current_period
from screenshot_service.state.base import KeyRecord
from tests.conftest import TestSite, base_settings

REPO = Path(__file__).resolve().parent.parent
# Fast tuning for tests: other instances' jobs seen at once, dead leases taken over in a second.
FAST = {"poll_interval": 0.05, "lease_seconds": 1.5, "webhook_backoff": 0.05}
# A killed process's job lease in a spawned service: a restart takes its jobs over in seconds;
# renewed every third of it, so a loaded machine's stalls stay far inside it.
PROCESS_LEASE_SECONDS = 3.0


def plan(**overrides: Any) -> dict[str, Any]:
    """A plan that limits nothing unless told to."""
    return {"requests_per_second": 100000, "burst": 100000, "monthly_captures": 10**9, "concurrency": 1000,
            "max_queued_jobs": 1000, **overrides}  # fmt: skip


def settings_for(root: Path, site: TestSite, *, plans: dict[str, Any] | None = None, **sections: Any) -> config.Settings:
    return base_settings(root, site.port, plans={"jobs": plan(), **(plans or {})}, **sections)


@dataclass
class JobsApp:
    """A running app with jobs, one key on it, and shortcuts for the API."""

    client: TestClient
    key: str
    record: KeyRecord
    settings: config.Settings
    site: TestSite

    @property
    def app(self) -> web.Application:
        return self.client.app

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def submit(self, path: str = "/paint", *, key: str | None = None, headers: dict[str, str] | None = None,
                     **options: Any) -> Any:  # fmt: skip
        body = {"url": self.site.url + path, **options}
        return await self.client.post("/v1/jobs", json=body, headers={**self.auth(key), **(headers or {})})

    async def submit_ok(self, path: str = "/paint", **options: Any) -> dict[str, Any]:
        response = await self.submit(path, **options)
        assert response.status == 202, await response.text()
        return dict(await response.json())

    async def job(self, job_id: str, key: str | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/v1/jobs/{job_id}", headers=self.auth(key))
        assert response.status == 200, await response.text()
        return dict(await response.json())

    async def wait_done(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return await poll_until_done(lambda: self.job(job_id), timeout)

    async def credits_used(self) -> int:
        return await self.app[STATE].credits_used(self.record.id, current_period().name)

    async def new_key(self, plan_name: str = "jobs") -> tuple[KeyRecord, str]:
        return await create_key(self.app[STATE], plan_name, "other")


async def poll_until_done(fetch: Callable[[], Any], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await fetch()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return dict(job)
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s"
        await asyncio.sleep(0.05)


async def start_app(
    aiohttp_client: Any,
    settings: config.Settings,
    site: TestSite,
    pool: BrowserPool,
    *,
    key: tuple[KeyRecord, str] | None = None,
    key_plan: str = "jobs",
    tuning: dict[str, float] | None = None,
    **overrides: Any,
) -> JobsApp:
    """create_app + install_jobs on ``settings`` (its own state store), and a key on it."""
    app = create_app(settings, pool=pool, **overrides)
    knobs = {**FAST, **(tuning or {})}
    install_jobs(app, poll_interval=knobs["poll_interval"], lease_seconds=knobs["lease_seconds"],
                 webhook_backoff=knobs["webhook_backoff"])  # fmt: skip
    client = await aiohttp_client(app)
    record, raw = key or await create_key(app[STATE], key_plan, "test")
    return JobsApp(client=client, key=raw, record=record, settings=settings, site=site)


# -- webhook receiver ------------------------------------------------------------------------------
@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    port: int
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers in order; 200 once they run out

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=0)

    async def hook(request: web.Request) -> web.Response:
        receiver.received.append(Received(dict(request.headers), await request.read(), time.time()))
        return web.Response(status=receiver.statuses.pop(0) if receiver.statuses else 200, text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield receiver
    finally:
        await runner.cleanup()


# -- a real process --------------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Chromium runs in its own session, so killpg is not enough)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just not reaped


def kill_tree(process: subprocess.Popen[bytes]) -> list[int]:
    """SIGKILL the process and everything it started, like a container being killed.

    The tree is frozen first (SIGSTOP until no new process shows up), so a
    Chromium forking a renderer right now cannot leave an orphan behind.
    """
    tree: list[int] = []
    while True:
        fresh = [pid for pid in [process.pid, *descendants(process.pid)] if pid not in tree]
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        tree += fresh
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)
    return tree


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """The pids still alive after ``timeout`` (killed processes take a moment on a busy machine)."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def spawn_service(
    config_path: Path, log_path: Path, lease_seconds: float = PROCESS_LEASE_SECONDS
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.jobs_helpers", "serve", str(config_path), str(lease_seconds)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def _serve(config_path: str, lease_seconds: float | None) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = config_loading.load(config_path)
    app = create_app(settings)
    install_jobs(app, lease_seconds=lease_seconds)
    web.run_app(app, host=settings.server.host, port=settings.server.port,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS, handler_cancellation=True, print=None)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) in (3, 4):
        _serve(sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else None)
    else:
        sys.exit("usage: python -m tests.jobs_helpers serve CONFIG [LEASE_SECONDS]")
