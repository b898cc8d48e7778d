"""Command line: serve, keys, capture (SPEC §6)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from . import config_loading
from .config import ConfigError, Settings

DESCRIPTION = "Self-hosted website screenshot API on a warm headless Chromium pool."


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # OPTION=VALUE words of `keys sign` may follow its --flags, where argparse cannot take them
    # as the positional list it already closed: collect them here, refuse anything else.
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "func", None) is _keys_sign and not any(w.startswith("-") for w in extra):
        args.options = [*args.options, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = _settings(args)
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="screenshot-service", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="TOML config file (default: $SCREENSHOT_CONFIG or built-in defaults)")
        return p

    serve = with_config(sub.add_parser("serve", help="run the HTTP API"))
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--no-bootstrap-key", action="store_true",
                       help="do not create a free key when the key store is empty")
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = with_config(keys_sub.add_parser("create", help="create a key; prints it as the last line"))
    create.add_argument("--plan", required=True)
    create.add_argument("--name", default="")
    create.set_defaults(func=_keys_create)
    listing = with_config(keys_sub.add_parser("list", help="list keys (never the secret part)"))
    listing.add_argument("--json", action="store_true",
                         help="one JSON array of {id, name, plan, created_at, revoked, webhook_secret, signing_secret}")
    listing.set_defaults(func=_keys_list)
    sign = with_config(keys_sub.add_parser("sign", help="print a signed /v1/screenshot link (last line)"))
    sign.add_argument("key_id")
    sign.add_argument("--url", required=True, help="the page to capture")
    sign.add_argument("--expires-in", type=int, metavar="S", help="the link answers 401 signature_expired after S s")
    sign.add_argument("--base", metavar="URL", help="the service's base URL (default: server.public_url, "
                                                    "else http(s)://server.host:server.port)")
    sign.add_argument("options", nargs="*", metavar="OPTION=VALUE", help="capture options, e.g. width=800 cache=true")
    sign.set_defaults(func=_keys_sign)
    revoke = with_config(keys_sub.add_parser("revoke", help="revoke a key by its id"))
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_keys_revoke)
    usage = with_config(keys_sub.add_parser("usage", help="this month's usage of a key"))
    usage.add_argument("key_id")
    usage.set_defaults(func=_keys_usage)

    from .capture_cli import add_capture_parser

    add_capture_parser(sub, with_config)
    from .bench import add_bench_parser

    add_bench_parser(sub, with_config)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = config_loading.load(getattr(args, "config", None))
    server: dict[str, object] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    return config_loading.replace(settings, server=server) if server else settings


# -- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from . import eventloop
    from .app import SHUTDOWN_GRACE_SECONDS, create_app, server_options
    from .observability import JsonAccessLogger, access_log, configure_logging
    from .server import run
    from .tls import server_ssl_context

    configure_logging(settings.log)
    ssl_context = server_ssl_context(settings.server)  # a bad TLS setting stops us before anything is created
    if not args.no_bootstrap_key:
        asyncio.run(_bootstrap_key(settings))
    app = create_app(settings)
    run(  # web.run_app, answering what aiohttp's parser rejects as JSON too (server.py)
        app,
        host=settings.server.host,
        port=settings.server.port,
        ssl_context=ssl_context,
        access_log_class=JsonAccessLogger,
        access_log=access_log,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,  # after the app's own drain (app._drain)
        # A client that hangs up cancels its capture: the browser slot comes back at once and
        # the credit is refunded (the ledger's settle and the context's disposal are shielded).
        handler_cancellation=True,
        loop=eventloop.new_event_loop(),
        print=lambda text: print(text, flush=True),
        **server_options(settings),  # read timeouts and head limits (keepalive_timeout among them)
    )
    return 0


async def _bootstrap_key(settings: Settings) -> None:
    """A first run on an empty store is usable at once: one free key, printed once."""
    from .limits.keys import create_key
    from .wiring import open_state

    store = open_state(settings)
    try:
        if await store.count_keys() == 0:
            plan = "free" if "free" in settings.plans else sorted(settings.plans)[0]
            record, raw = await create_key(store, plan, "bootstrap")
            print(f"Created a '{plan}' API key {record.id} (shown once, keep it):", flush=True)
            print(raw, flush=True)
    finally:
        await store.close()


# -- keys ----------------------------------------------------------------------------------------


def _with_store(settings: Settings, work: object) -> int:
    from .wiring import open_state

    async def run() -> int:
        store = open_state(settings)
        try:
            return int(await work(store))  # type: ignore[operator]
        finally:
            await store.close()

    return asyncio.run(run())


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from .limits.keys import create_key

    if args.plan not in settings.plans:
        print(f"unknown plan {args.plan!r}; configured plans: {', '.join(sorted(settings.plans))}",
              file=sys.stderr)
        return 2

    async def work(store: object) -> int:
        record, raw = await create_key(store, args.plan, args.name)  # type: ignore[arg-type]
        print(f"id: {record.id}")
        print(f"plan: {record.plan}")
        print(f"webhook_secret: {record.webhook_secret}")
        print(f"signing_secret: {record.signing_secret}")
        print(raw)  # the key itself is always the LAST line, for scripts
        return 0

    return _with_store(settings, work)


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: object) -> int:
        keys = [{
            "id": record.id, "name": record.name, "plan": record.plan,
            "created_at": record.created_at.isoformat(), "revoked": record.revoked,
            "webhook_secret": record.webhook_secret, "signing_secret": record.signing_secret,
        } for record in await store.list_keys()]  # type: ignore[attr-defined]
        if args.json:
            print(json.dumps(keys, indent=2))
        else:
            for key in keys:  # one JSON object a line
                print(json.dumps(key))
        return 0

    return _with_store(settings, work)


def _keys_sign(args: argparse.Namespace, settings: Settings) -> int:

    from .errors import ApiError
    from .limits.signed_links import signed_link_options
    from .signing import LINK_PARAMETERS, signed_url

    options: dict[str, str] = {}
    for item in args.options:
        name, equals, value = item.partition("=")
        if not equals or not name or name in ("url", *LINK_PARAMETERS):
            print(f"expected OPTION=VALUE with a capture option, got {item!r} (the link's url, key_id, "
                  "expires and signature come from the arguments)", file=sys.stderr)
            return 2
        options[name] = value
    try:  # the server's own rules, so a link that would answer 400 is never printed
        signed_link_options({"url": args.url, **options})
    except ApiError as error:
        print(f"{error.message}: {json.dumps(error.details.get('fields', error.details))}", file=sys.stderr)
        return 2

    async def work(store: object) -> int:
        record = await store.key_by_id(args.key_id)  # type: ignore[attr-defined]
        if record is None or record.revoked:
            print(f"no active key with id {args.key_id}", file=sys.stderr)
            return 1
        base = args.base or _service_base(settings)
        print(signed_url(base, record.id, record.signing_secret, args.url, args.expires_in, **options))
        return 0

    return _with_store(settings, work)


def _service_base(settings: Settings) -> str:
    server = settings.server
    if server.public_url:
        return server.public_url
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(server.host, server.host)
    scheme = "https" if server.tls_cert else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{server.port}"


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: object) -> int:
        if await store.revoke_key(args.key_id):  # type: ignore[attr-defined]
            print(f"revoked {args.key_id}")
            return 0
        print(f"no key with id {args.key_id}", file=sys.stderr)
        return 1

    return _with_store(settings, work)


def _keys_usage(args: argparse.Namespace, settings: Settings) -> int:
    from .limits.quota import current_period

    async def work(store: object) -> int:
        keys = {r.id: r for r in await store.list_keys()}  # type: ignore[attr-defined]
        record = keys.get(args.key_id)
        if record is None:
            print(f"no key with id {args.key_id}", file=sys.stderr)
            return 1
        period = current_period()
        used = await store.credits_used(record.id, period.name)  # type: ignore[attr-defined]
        plan = settings.plans.get(record.plan)
        limit = plan.monthly_captures if plan else 0
        print(json.dumps({"id": record.id, "plan": record.plan, "period": period.name, "used": used,
                          "limit": limit, "remaining": max(0, limit - used),
                          "resets_at": period.resets_at_iso}))
        return 0

    return _with_store(settings, work)
