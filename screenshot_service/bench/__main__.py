"""`python -m screenshot_service.bench [options]`: the same as `screenshot-service bench`."""

from __future__ import annotations

import argparse
import sys

from .. import config_loading
from ..config import ConfigError
from . import configure_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = configure_parser(argparse.ArgumentParser(
        prog="screenshot-service bench",
        description="Benchmark the service against the raw-CDP floor and a naive per-request Chromium."))
    parser.add_argument("--config", help="TOML config (only browser.executable is used)")
    args = parser.parse_args(argv)
    try:
        settings = config_loading.load(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return run(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
