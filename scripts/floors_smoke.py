"""The floors smoke test (scripts/floors-smoke): does the package work with the lowest
versions its setup.cfg allows?

``python scripts/floors_smoke.py constraints setup.cfg`` prints a pip constraints file
pinning every dependency of ``install_requires`` at its floor (``aiohttp>=3.14,<4`` ->
``aiohttp==3.14``) or its pin (``pyppeteer==2.0.0``), so the floors are stated once, in setup.cfg.

``python floors_smoke.py run`` (inside the venv made with those constraints, from a
directory outside the checkout) imports every module, exercises each dependency where
the code leans on an API newer than its first releases, runs the CLI, starts the app
(Chromium included) and makes one capture over HTTP.  It prints what it checked and
exits non-zero at the first failure.
"""

from __future__ import annotations

import asyncio
import configparser
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from importlib import metadata, resources
from pathlib import Path

# Optional extras the package itself never imports at module level.
EXTRA_ONLY = {"matplotlib", "tqdm"}


def constraints(setup_cfg: str) -> str:
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = []
    for requirement in parser["options"]["install_requires"].split("\n"):
        requirement = requirement.strip()
        if not requirement:
            continue
        found = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(?:>=|==)\s*([0-9][0-9A-Za-z.]*)", requirement)
        if not found:
            raise SystemExit(f"setup.cfg: {requirement!r} has no >= floor or == pin")
        name = re.sub(r"\[.*\]", "", found.group(1))
        lines.append(f"{name}=={found.group(2)}")
    return "\n".join(lines) + "\n"


def step(what: str) -> None:
    print(f"floors-smoke: {what}", flush=True)


def import_everything() -> None:
    import screenshot_service

    count = 0
    for module in pkgutil.walk_packages(screenshot_service.__path__, "screenshot_service."):
        if module.name.endswith(".__main__"):  # runs the CLI when imported
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as exc:
            if exc.name not in EXTRA_ONLY:
                raise
        count += 1
    location = Path(screenshot_service.__file__).resolve()
    assert "site-packages" in location.parts, f"imported from the checkout, not the install: {location}"
    import screenshot_client  # the client's own distribution, installed beside the server

    client = Path(screenshot_client.__file__).resolve()
    assert "site-packages" in client.parts, f"the client came from the checkout, not its install: {client}"
    for shipped in ("py.typed", "api/tester/index.html"):
        assert (resources.files("screenshot_service") / shipped).is_file(), f"{shipped} is not installed"
    step(f"imported {count} modules from {location.parent}; py.typed and the tester page are installed")


async def dependencies(tmp: Path) -> None:
    # redis: Redis.from_pool and aclose (5.0.1), protocol=2 (5.0)
    from screenshot_service.state.redis import RedisStateStore

    store = RedisStateStore("redis://127.0.0.1:1/0")  # never connects
    await store.close()
    # aiolimiter: has_capacity and the bucket's level, on the running loop
    from screenshot_service.config import PlanConfig
    from screenshot_service.limits.rate import LocalRateLimiter

    limiter = LocalRateLimiter()
    first, second = await limiter.hit("k", PlanConfig()), await limiter.hit("k", PlanConfig())
    assert first.allowed and not second.allowed and second.retry_after > 0, (first, second)
    # aioboto3 / aiobotocore / botocore: the client config (request_checksum_calculation needs botocore 1.36)
    import aioboto3

    from screenshot_service.storage.s3 import client_config

    session = aioboto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    async with session.client("s3", endpoint_url="http://127.0.0.1:1", config=client_config("http://127.0.0.1:1")):
        pass
    # prometheus-client: the registry with its custom collector
    from screenshot_service.metrics import Metrics

    assert b"screenshot_" in Metrics().render()
    # idna: the UTS-46 mapping of hosts
    from screenshot_service.egress.urls import parse_target_url

    assert parse_target_url("http://BÜCHER.example/").host == "xn--bcher-kva.example"
    # uvloop: the loop this runs on, as `serve` does; the app below launches Chromium on it
    # (subprocess_exec with pass_fds and preexec_fn, read and write pipes)
    import io

    from PIL import Image

    from screenshot_service.capture import diff_engine

    def png(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        image = Image.new("RGB", (64, 32), (255, 255, 255))
        image.paste(colour, (8, 8, 24, 20))
        image.save(out, "PNG")
        return out.getvalue()

    old, new = diff_engine.decode(png((255, 255, 255))), diff_engine.decode(png((200, 0, 0)))
    found = diff_engine.compare(old, new, 0.1)
    assert found.changed_pixels == 16 * 12 and [b.to_json() for b in found.regions] == [
        {"x": 8, "y": 8, "width": 16, "height": 12}], found
    assert diff_engine.marked_image(new, found.mask).startswith(b"\x89PNG")
    import uvloop

    assert isinstance(asyncio.get_running_loop(), uvloop.Loop), asyncio.get_running_loop()
    versions = {name: metadata.version(name) for name in
                ("aiohttp", "redis", "aiolimiter", "aioboto3", "botocore", "prometheus-client", "idna", "pyppeteer",
                 "websockets", "multidict", "uvloop", "numpy", "Pillow", "html-to-markdown")}
    step("dependencies exercised: " + ", ".join(f"{k} {v}" for k, v in versions.items()))


def command_line(tmp: Path) -> tuple[str, str, str]:
    cfg = tmp / "smoke.toml"
    cfg.write_text(f'[state.sqlite]\npath = "{tmp / "state.sqlite3"}"\n[storage.local]\npath = "{tmp / "c"}"\n'
                   '[browser]\npool_size = 1\n')
    cli = [str(Path(sys.executable).parent / "screenshot-service")]

    def run(*args: str) -> str:
        return subprocess.run([*cli, *args, "--config", str(cfg)], check=True, capture_output=True, text=True,
                              timeout=60).stdout

    key = run("keys", "create", "--plan", "free").strip().splitlines()[-1]
    assert key.startswith("sk_"), key
    listed = json.loads(run("keys", "list", "--json"))
    assert len(listed) == 1 and listed[0]["signing_secret"].startswith("sign_"), listed
    link = run("keys", "sign", listed[0]["id"], "--url", "https://example.com/", "width=800").strip().splitlines()[-1]
    assert "&signature=" in link, link
    step("CLI: keys create, keys list --json, keys sign")
    return str(cfg), key, link


async def serve(cfg: str, key: str, link: str) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from screenshot_service import config_loading
    from screenshot_service.app import create_app
    from screenshot_service.client import ScreenshotClient

    app = create_app(config_loading.load(cfg))
    async with TestClient(TestServer(app)) as http:
        assert (await http.get("/healthz")).status == 200
        doc = await (await http.get("/v1/openapi.json")).json()
        assert "invalid_signature" in json.dumps(doc)
        signed = "/v1/screenshot?" + link.split("?", 1)[1].replace("width=800", "width=801")
        tampered = await http.get(signed)
        assert tampered.status == 401 and (await tampered.json())["error"]["code"] == "invalid_signature"
        base = str(http.make_url("")).rstrip("/")
        async with ScreenshotClient(base, key) as shots:
            png = await shots.screenshot(html="<p>floors</p>", width=200, height=100, response_type="image")
            assert isinstance(png, bytes) and png.startswith(b"\x89PNG"), png[:20]
            assert (await shots.usage())["quota"]["used"] == 1
    step("app: started (Chromium, SQLite, local storage), one capture through the client, a tampered link 401")


async def run_all() -> None:
    import_everything()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        await dependencies(tmp)
        cfg, key, link = command_line(tmp)
        await serve(cfg, key, link)
    step("ok")


def main() -> None:
    if sys.argv[1:2] == ["constraints"]:
        sys.stdout.write(constraints(sys.argv[2] if len(sys.argv) > 2 else "setup.cfg"))
    elif sys.argv[1:2] == ["run"]:
        os.environ.setdefault("SCREENSHOT_SERVER_LOG_LEVEL", "warning")
        from screenshot_service import eventloop

        with asyncio.Runner(loop_factory=eventloop.loop_factory()) as runner:  # the loop `serve` uses
            runner.run(run_all())
    else:
        raise SystemExit("usage: floors_smoke.py constraints [setup.cfg] | run")


if __name__ == "__main__":
    main()
