"""`screenshot-service capture URL -o FILE [options]`: one capture, no server.

Same options and validation as the API (each option is a flag of the same
name), same egress policy and deadline; the image goes straight to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .capture.declaration import QUERY
from .capture.options import OPTIONS, CaptureOptions, accepted_at
from .config import Settings
from .error_map import as_api_error
from .errors import ApiError
from .faults import LayerError
from .storage.base import StoredObject, extension_of


class _FileStorage:
    """A Storage that writes the one capture to the file the user named, and the content ``extract``
    asks for beside it, named like it with its kind's extension (``shot.png`` → ``shot.md``)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.extension = extension_of(fmt)

    async def put(self, name: str, data: bytes, content_type: str, *, base_url: str = "") -> StoredObject:
        extension = name.rsplit(".", 1)[1]
        path = self.path if extension == self.extension else self.path.with_suffix(f".{extension}")
        await asyncio.to_thread(path.write_bytes, data)
        return StoredObject(name=path.name, url=path.resolve().as_uri(),
                            expires_at=datetime.now(UTC) + timedelta(days=36500),
                            size=len(data), content_type=content_type)

    async def get(self, name: str) -> tuple[bytes, str] | None:
        return None


def add_capture_parser(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    capture = with_config(sub.add_parser("capture", help="capture one URL to a file, without a server"))
    capture.add_argument("url")
    capture.add_argument("-o", "--output", required=True, help="file to write the image (or the content format) to; extract= kinds go beside it")
    for name in accepted_at(QUERY):
        if name != "url":
            flag = "--" + name.replace("_", "-")
            capture.add_argument(flag, dest=f"opt_{name}", metavar="VALUE",
                                 help=OPTIONS[name].description.replace("%", "%%"))
    capture.set_defaults(func=run_capture)


def run_capture(args: argparse.Namespace, settings: Settings) -> int:
    query = {"url": args.url}
    query.update({k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None})
    try:
        opts = CaptureOptions.from_query(query)
        result = asyncio.run(_capture(settings, opts, Path(args.output)))
    except ApiError as error:
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return 1
    except LayerError as error:
        print(json.dumps(as_api_error(error).to_dict()), file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items() if k != "url"} | {"file": args.output}))
    return 0


async def _capture(settings: Settings, opts: CaptureOptions, output: Path) -> dict[str, object]:
    from .capture.pipeline import CapturePipeline, Order
    from .capture.service import CaptureService
    from .config_loading import replace
    from .egress.policy import EgressPolicy
    from .egress.resolver import SystemResolver
    from .egress.upstream import ProxyPools
    from .wiring import start_browser, stop_browser

    one = replace(settings, browser={"pool_size": 1, "max_queue": 0, "browsers": 1})
    policy, resolver = EgressPolicy.from_config(one.egress), SystemResolver()
    pool, proxy = await start_browser(one.browser, policy, resolver)
    try:
        service = CaptureService(pool, _FileStorage(output, opts.format), policy, resolver,
                                 deadline_seconds=one.capture.deadline_seconds,
                                 max_pdf_pages=one.capture.max_pdf_pages,
                                 proxies=ProxyPools.from_config(one.proxies))
        result = await CapturePipeline(service).run(Order(opts=opts, started=asyncio.get_running_loop().time()))
        return result.to_json()
    finally:
        await stop_browser(pool, proxy)
