"""The command line as a user runs it: real processes, real ports, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import answered_by, image_of, wait_for
from tests.raw_http import MALFORMED, SECRET, exchange
from tests.site import PAINT_RGB

CLI = [sys.executable, "-m", "screenshot_service"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, site_port: int, port: int = 0, drain: float = 10.0) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(
        f"[server]\nport = {port}\ndrain_seconds = {drain}\n"
        f"[browser]\npool_size = 1\n"
        f"[egress]\nallow = [\"127.0.0.1:{site_port}\"]\n"
        f"[storage.local]\npath = \"{tmp_path / 'captures'}\"\n"
        f"[state.sqlite]\npath = \"{tmp_path / 'state.sqlite3'}\"\n"
    )
    return path


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_keys_create_list_usage_revoke(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    created = run("keys", "create", "--plan", "pro", "--name", "ci", "--config", cfg)
    lines = created.stdout.strip().splitlines()
    key = lines[-1]
    assert key.startswith("sk_") and len(key) >= 40  # the key is the LAST line
    key_id = next(line.split(": ")[1] for line in lines if line.startswith("id: "))
    listed = run("keys", "list", "--config", cfg).stdout
    assert key_id in listed and key not in listed
    assert json.loads(listed.splitlines()[0])["plan"] == "pro"
    usage = json.loads(run("keys", "usage", key_id, "--config", cfg).stdout)
    assert usage["used"] == 0 and usage["limit"] == 50000
    assert "revoked" in run("keys", "revoke", key_id, "--config", cfg).stdout
    assert json.loads(run("keys", "list", "--config", cfg).stdout.splitlines()[0])["revoked"] is True
    # only the hash is at rest
    assert key.encode() not in (tmp_path / "state.sqlite3").read_bytes()


def test_keys_list_json_shows_both_secrets(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    created = run("keys", "create", "--plan", "free", "--name", "site", "--config", cfg).stdout.splitlines()
    shown = dict(line.split(": ", 1) for line in created[:-1])
    assert shown["signing_secret"].startswith("sign_") and shown["webhook_secret"].startswith("whsec_")
    run("keys", "create", "--plan", "pro", "--config", cfg)
    listed = json.loads(run("keys", "list", "--json", "--config", cfg).stdout)
    assert isinstance(listed, list) and len(listed) == 2
    first = listed[0]
    assert {"id", "name", "plan", "created_at", "webhook_secret", "signing_secret"} <= set(first)
    assert (first["id"], first["name"], first["plan"]) == (shown["id"], "site", "free")
    assert (first["webhook_secret"], first["signing_secret"]) == (shown["webhook_secret"], shown["signing_secret"])
    assert first["signing_secret"] != listed[1]["signing_secret"]
    assert created[-1] not in json.dumps(listed)  # never the key itself


def test_keys_sign_refuses_what_the_server_would(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    key_id = run("keys", "create", "--plan", "free", "--config", cfg).stdout.splitlines()[0].split(": ")[1]
    link = run("keys", "sign", key_id, "--url", "https://example.com/", "--config", cfg, "width=800").stdout
    assert link.strip().splitlines()[-1].startswith("http://127.0.0.1:0/v1/screenshot?key_id=" + key_id)
    for words, exit_code, says in ((["cookies=[]"], 2, "not allowed on a signed link"), (["width=5"], 2, "width"),
                                   (["signature=x"], 2, "OPTION=VALUE"), ([], 1, "no active key")):
        target = "key_nope" if exit_code == 1 else key_id
        result = run("keys", "sign", target, "--url", "https://example.com/", "--config", cfg, *words, check=False)
        assert result.returncode == exit_code and says in result.stderr, (words, result.stderr)


def test_unknown_plan_and_bad_config_exit_2(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    unknown = run("keys", "create", "--plan", "platinum", "--config", cfg, check=False)
    assert unknown.returncode == 2 and "unknown plan 'platinum'" in unknown.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[browser]\npool_size = 'many'\n")
    result = run("serve", "--config", str(bad), check=False)
    assert result.returncode == 2
    assert "browser.pool_size = 'many' is not allowed" in result.stderr


async def run_async(*args: str) -> tuple[int, str, str]:
    """Like run(), without blocking the loop that serves the test site."""
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), stdout.decode(), stderr.decode()


async def test_one_shot_capture_writes_the_file(tmp_path: Path, test_site: Any) -> None:
    cfg = str(write_config(tmp_path, test_site.port))
    out = tmp_path / "shot.png"
    code, stdout, stderr = await run_async(
        "capture", test_site.url + "/paint", "-o", str(out), "--width", "640", "--height", "480", "--config", cfg
    )
    assert code == 0, stderr
    assert json.loads(stdout)["width"] == 640
    image = image_of(out.read_bytes()).convert("RGB")
    assert image.size == (640, 480) and image.getpixel((200, 200)) == PAINT_RGB
    code, _, stderr = await run_async("capture", "http://127.0.0.1:9/", "-o", str(out), "--config", cfg)
    assert code == 1 and "blocked_target" in stderr
    code, _, stderr = await run_async("capture", test_site.url, "-o", str(out), "--width", "5", "--config", cfg)
    assert code == 1 and "width" in stderr


async def test_serve_bootstraps_a_key_redacts_logs_and_drains_on_sigterm(tmp_path: Path, test_site: Any) -> None:
    port = free_port()
    cfg = write_config(tmp_path, test_site.port, port)
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        key = ""
        while not key:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "serve exited early: " + "".join(output)
            output.append(line)
            if line.startswith("sk_"):
                key = line.strip()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(base + "/readyz") as answer:
                        return answer.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            assert await wait_for(ready, 60), "serve never became ready: " + "".join(output)
            # What aiohttp's parser refuses is answered as JSON by the real server too.
            for case, data in MALFORMED.items():
                answer = await exchange(port, data)
                assert answer.status == 400 and answer.headers["content-type"].startswith("application/json"), case
                assert answer.json()["error"]["code"] == "malformed_request", case
            # One capture on the bootstrapped key (a free key: one request, so no rate window to wait
            # out), in flight when SIGTERM arrives: it still completes.
            seen = test_site.log.count("/slow")
            params = {"url": test_site.url + "/slow?s=1.5", "api_key": key, "response_type": "image"}
            slow = asyncio.ensure_future(http.get(base + "/v1/screenshot", params=params))
            assert await wait_for(lambda: test_site.log.count("/slow") > seen or slow.done(), 60)
            assert not slow.done(), "answered before its page was even loaded"
            process.send_signal(signal.SIGTERM)  # while Chromium waits on the slow page
            response = await slow
            assert response.status == 200
            image = image_of(await response.read()).convert("RGB")
            assert image.getpixel((50, 50)) == (0, 0, 255)  # the slow page itself, finished after SIGTERM
        rest = await asyncio.wait_for(process.stdout.read(), 30)
        output.append(rest.decode())
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    log = "".join(output)
    access = [json.loads(line[line.index("{"):]) for line in log.splitlines()
              if "screenshot_service.access" in line and "{" in line]
    shots = [entry for entry in access if entry["path"] == "/v1/screenshot"]
    assert shots, log
    assert shots[0]["status"] == 200 and shots[0]["key_id"].startswith("key_")
    assert shots[0]["target_host"] == "127.0.0.1" and "request_id" in shots[0]
    # The key was printed once at bootstrap, and never again in any log line.
    assert log.count(key) == 1
    assert "api_key=" not in log and "/slow" not in log
    # Clients' mistakes were logged, without a traceback.
    assert "malformed request from" in log and "Traceback" not in log and SECRET.decode() not in log


# Two drains in a row (18 s) are past the bound (DRAIN + DRAIN_SLACK = 16 s); one drain leaves the
# process 7 s to close its Chromium and exit (~1-2 s under load).
DRAIN, DRAIN_SLACK = 9.0, 7.0


@pytest.mark.slow
async def test_serve_takes_drain_seconds_once_and_refunds_a_capture_it_cuts(tmp_path: Path, test_site: Any) -> None:
    port = free_port()
    cfg = write_config(tmp_path, test_site.port, port, drain=DRAIN)
    created = run("keys", "create", "--plan", "pro", "--config", str(cfg)).stdout.strip().splitlines()
    key, key_id = created[-1], next(line.split(": ")[1] for line in created if line.startswith("id: "))
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(cfg), "--no-bootstrap-key",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(base + "/readyz") as answer:
                        return answer.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            assert await wait_for(ready, 60), "serve never became ready"
            # Two requests outlast the drain: one capturing a page slower than it (pool_size 1),
            # one waiting for the place, which the pool's drain alone does not see.
            seen = test_site.log.count("/slow")
            params = {"url": test_site.url + "/slow?s=60", "api_key": key}
            held = [asyncio.ensure_future(http.get(base + "/v1/screenshot", params=params)) for _ in range(2)]
            assert await wait_for(lambda: test_site.log.count("/slow") > seen, 60)
            process.send_signal(signal.SIGTERM)
            # One drain and a short grace, not a drain for the pool and another for the handlers.
            assert await answered_by(process.wait(), DRAIN, DRAIN_SLACK) == 0
            for answer in await asyncio.gather(*held, return_exceptions=True):
                assert isinstance(answer, aiohttp.ClientError) or answer.status == 503, answer
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert json.loads(run("keys", "usage", key_id, "--config", str(cfg)).stdout)["used"] == 0  # both refunded
