"""The client as its own distribution (clients/python): what its wheel requires, that it runs
with aiohttp alone beside it, and that the server signs and verifies with the client's code."""

from __future__ import annotations

import asyncio
import configparser
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
import screenshot_client
import screenshot_client.signing
from packaging.requirements import Requirement

from screenshot_service import signing
from tests.conftest import Service, image_of
from tests.site import PAINT_RGB

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python"
# What installing the server brings and the client must not: the server, and pyppeteer's pins.
SERVER_ONLY = ("screenshot_service", "pyppeteer", "urllib3", "websockets", "pyee", "boto3", "redis")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("client-wheel")
    # Built from a copy: building in place would leave build/ and *.egg-info in the checkout.
    source = shutil.copytree(CLIENT, out / "source", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=180)
    (built,) = out.glob("screenshot_service_client-*.whl")
    return built


def wheel_metadata(wheel: Path) -> tuple[dict[str, list[str]], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(meta).decode())
    fields = {key: message.get_all(key) or [] for key in ("Name", "Version", "Requires-Dist", "Requires-Python")}
    return fields, names


def test_the_client_wheel_requires_aiohttp_alone_and_holds_only_the_client(wheel: Path) -> None:
    fields, names = wheel_metadata(wheel)
    assert fields["Name"] == ["screenshot-service-client"]
    assert fields["Version"] == [screenshot_client.__version__]
    requires = [Requirement(text) for text in fields["Requires-Dist"]]
    assert [req.name for req in requires] == ["aiohttp"]
    assert "3.14.3" in requires[0].specifier and "3.14.2" not in requires[0].specifier  # the advisories' fixes
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"screenshot_client"}
    assert "screenshot_client/py.typed" in names


def _aiohttp_alone(into: Path) -> Path:
    """A folder holding aiohttp and what it requires here, linked from this environment."""
    into.mkdir()
    seen: set[str] = set()
    todo = ["aiohttp"]
    while todo:
        dist = metadata.distribution(todo.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        todo += [req.name for req in map(Requirement, dist.requires or []) if req.marker is None or req.marker.evaluate()]
        for top in {Path(str(file)).parts[0] for file in dist.files or []}:
            source = Path(str(dist.locate_file(top)))
            if not top.endswith(".dist-info") and source.exists() and not (into / top).exists():
                (into / top).symlink_to(source)
    assert not seen & {"pyppeteer", "urllib3", "websockets", "pyee", "screenshot-service"}, seen
    return into


RUN_CLIENT = """
import importlib.util, json, sys
sys.path[:0] = sys.argv[1:3]
from screenshot_client import BlockingScreenshotClient
base, key, page, out = sys.argv[3:7]
with BlockingScreenshotClient(base, key) as shots:
    png = shots.screenshot(page, width=320, height=200, response_type="image")
open(out, "wb").write(png)
print(json.dumps({
    "from": importlib.util.find_spec("screenshot_client").origin,
    "loaded": sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[7].split(",")),
    "findable": [name for name in sys.argv[7].split(",") if importlib.util.find_spec(name)],
}))
"""


async def test_the_installed_wheel_captures_with_nothing_but_aiohttp_beside_it(
    wheel: Path, tmp_path: Path, service: Service
) -> None:
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:  # a pure-Python wheel installs by unpacking
        archive.extractall(installed)
    deps = _aiohttp_alone(tmp_path / "deps")
    out = tmp_path / "shot.png"
    base = str(service.client.make_url("")).rstrip("/")
    # -S: no site-packages at all (neither this environment's nor the editable client's .pth)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-S", "-c", RUN_CLIENT, str(installed), str(deps), base, service.key,
        service.site.url + "/paint", str(out), ",".join(SERVER_ONLY),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert report["from"].startswith(str(installed))
    assert report["loaded"] == [] and report["findable"] == []
    image = image_of(out.read_bytes())
    assert image.size == (320, 200) and image.convert("RGB").getpixel((200, 150)) == PAINT_RGB


def test_the_server_requires_the_client_release_of_its_own_checkout() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    requires = [Requirement(line) for line in parser["options"]["install_requires"].split("\n") if line.strip()]
    (client,) = [req for req in requires if req.name == "screenshot-service-client"]
    assert str(client.specifier) == f"=={screenshot_client.__version__}"
    (aiohttp,) = [req for req in requires if req.name == "aiohttp"]
    assert "3.14.3" in aiohttp.specifier and "3.14.2" not in aiohttp.specifier


def test_signing_has_one_implementation_the_clients() -> None:
    for name in ("canonical_query", "sign", "signed_url", "query_value"):
        assert getattr(signing, name) is getattr(screenshot_client.signing, name)
    # verification is the server's (constant-time), over the client's signature
    params = {"url": "https://example.com/a b", "key_id": "key_1", "width": "300"}
    good = screenshot_client.signing.sign("sign_s", params)
    assert signing.verify("sign_s", params, good) and not signing.verify("sign_s", params, good[:-1] + "0")


def readme_section(title: str) -> Iterator[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(title)
    for line in lines[start + 1:]:
        if line.startswith("## "):
            return
        yield line


def test_the_readme_says_how_to_install_the_client() -> None:
    section = "\n".join(readme_section("## Python client"))
    assert "pip install screenshot-service-client" in section
    assert "pip install ./clients/python" in section
    assert "from screenshot_client import" in section
