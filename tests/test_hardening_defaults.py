"""Safer defaults (Step 13, finding 7): returned URLs, file modes, Chromium's sandbox."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from screenshot_service.browser.chromium_flags import sandbox_flags
from screenshot_service.state.sqlite import SqliteStateStore
from screenshot_service.storage.local import LocalStorage
from tests.conftest import Service


async def _returned_url(service: Service, host: str) -> str:
    response = await service.client.get(
        "/v1/screenshot",
        params={"url": service.site.url + "/paint", "api_key": service.key},
        headers={"Host": host},
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["url"])


def _bound(service: Service) -> str:
    return f"http://127.0.0.1:{service.client.port}/v1/files/"


async def test_a_foreign_host_header_never_reaches_returned_urls(service: Service) -> None:
    assert (await _returned_url(service, "evil.example")).startswith(_bound(service))
    assert (await _returned_url(service, "evil.example:8000")).startswith(_bound(service))


async def test_localhost_and_the_bound_address_are_trusted_by_default(service: Service) -> None:
    port = service.client.port
    assert (await _returned_url(service, f"localhost:{port}")).startswith(f"http://localhost:{port}/v1/files/")
    assert (await _returned_url(service, f"127.0.0.1:{port}")).startswith(_bound(service))


async def test_allowed_hosts_lists_the_trusted_names(make_service: Any) -> None:
    service = await make_service(server={"allowed_hosts": ["shots.internal"]})
    assert (await _returned_url(service, "shots.internal:8443")).startswith("http://shots.internal:8443/v1/files/")
    assert (await _returned_url(service, "SHOTS.internal")).startswith("http://SHOTS.internal/v1/files/")
    # Listing names replaces the default set: localhost is no longer taken on trust.
    assert (await _returned_url(service, "localhost")).startswith(_bound(service))


async def test_public_url_wins_over_any_host(make_service: Any) -> None:
    service = await make_service(server={"public_url": "https://shots.example.com/"})
    assert (await _returned_url(service, "evil.example")).startswith("https://shots.example.com/v1/files/")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_file_and_data_directories_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0644 / 0755
    try:
        data = tmp_path / "data"
        state = SqliteStateStore(data / "state" / "state.sqlite3")
        await state.count_keys()  # WAL and shared-memory files exist once the file is used
        LocalStorage(data / "captures", retention_days=1)
    finally:
        os.umask(old)
    try:
        for directory in (data, data / "state", data / "captures"):
            assert _mode(directory) == 0o700, directory
        files = sorted((data / "state").iterdir())
        assert {"state.sqlite3", "state.sqlite3-wal"} <= {f.name for f in files}
        for path in files:  # the database, its -wal and -shm: webhook and signing secrets live there
            assert _mode(path) == 0o600, path
    finally:
        await state.close()


async def test_an_existing_state_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    SqliteStateStore(path)
    path.chmod(0o644)
    state = SqliteStateStore(path)
    try:
        assert _mode(path) == 0o600
    finally:
        await state.close()


@pytest.mark.parametrize(("euid", "no_sandbox"), [(0, True), (1000, False), (65534, False)])
def test_chromium_keeps_its_sandbox_unless_root(euid: int, no_sandbox: bool) -> None:
    assert ("--no-sandbox" in sandbox_flags(euid)) is no_sandbox


def _reservations_seen_by_another_process(path: Path) -> int:
    """What `keys list` or any other process reading the file sees (open, read, close)."""
    script = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
              " print(db.execute('SELECT COUNT(*) FROM quota_reservations').fetchone()[0]); db.close()")
    return int(subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True,
                              text=True).stdout)  # fmt: skip


async def test_opening_the_state_file_again_never_loses_commits_to_another_process(tmp_path: Path) -> None:
    # The service opens one file three times (state, jobs, cache).  Making the file private must
    # not drop the locks SQLite holds: another process closing its connection would then delete
    # the WAL under ours, and every later commit would be lost to everyone else.
    path = tmp_path / "state.sqlite3"
    state = SqliteStateStore(path)
    try:
        await state.reserve_credit("key_a", "2026-12", 10, lease_seconds=60)
        again = SqliteStateStore(path)
        assert await asyncio.to_thread(_reservations_seen_by_another_process, path) == 1
        await state.reserve_credit("key_a", "2026-12", 10, lease_seconds=60)
        assert await asyncio.to_thread(_reservations_seen_by_another_process, path) == 2
        await again.close()
    finally:
        await state.close()
    assert await asyncio.to_thread(_reservations_seen_by_another_process, path) == 2
