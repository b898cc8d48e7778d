"""Small helpers shared by the handlers: body reading, auth, base URLs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..appkeys import ADMISSION, KEY_ID, LIMITS, SETTINGS, STATE
from ..errors import PayloadTooLarge, RequestTimeout
from ..limits.admission import LimitState
from ..limits.keys import authenticate, key_from_request
from ..limits.signed_links import authenticate_signed
from ..state.base import KeyRecord
from .body import UNAUTHENTICATED_READS, parse_json_object


async def read_json_object(request: web.Request, *, key_known: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/408/413/503 that says what is wrong.

    ``key_known``: the caller was authenticated from a header before the body was read;
    otherwise this read counts against ``server.max_unauthenticated``.
    """
    server = request.app[SETTINGS].server
    limit = server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes", details={"limit_bytes": limit})
    gate: contextlib.AbstractContextManager[None] = (
        contextlib.nullcontext() if key_known else request.app[UNAUTHENTICATED_READS].hold()
    )
    with gate:
        try:
            async with asyncio.timeout(server.body_timeout_seconds):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(f"request body is over {limit} bytes", details={"limit_bytes": limit}) from None
        except TimeoutError:
            # The client stopped sending: answer, then close (app.py's _close_middleware)
            # rather than linger on a body that is not coming.
            raise RequestTimeout(
                f"the request body did not arrive within {server.body_timeout_seconds:g} s",
                details={"body_timeout_seconds": server.body_timeout_seconds},
                headers={"Connection": "close"},
            ) from None
    return parse_json_object(raw)


def key_in_headers(request: web.Request) -> bool:
    """Does the key come in a header?  Then it outranks one in the body (limits/keys.py), and can
    be checked before the body is read."""
    auth = request.headers.get("Authorization", "")
    return (auth[:7].lower() == "bearer " and bool(auth[7:].strip())) or bool(
        request.headers.get("X-API-Key", "").strip()
    )


async def caller(request: web.Request, body_key: object = None) -> KeyRecord:
    """Authenticate the request and count it against the key's request rate.

    Remembers the key's public id for the access log and what the limits decided, for the
    response's headers (``limit_headers.add_limit_headers``, errors included).
    """
    return await _admitted(request, await authenticate(request.app[STATE], key_from_request(request, body_key)))


async def signed_caller(request: web.Request, params: Mapping[str, str]) -> KeyRecord:
    """``caller`` for a signed link (``params``: its query, each name once): the key that signed
    it, counted against its rate alike."""
    record = await authenticate_signed(
        request.app[STATE], params, api_key_given=key_from_request(request) is not None
    )
    return await _admitted(request, record)


async def _admitted(request: web.Request, record: KeyRecord) -> KeyRecord:
    request[KEY_ID] = record.id
    limits = LimitState()
    request[LIMITS] = limits
    await request.app[ADMISSION].check_rate(record, limits)
    return record


def base_url(request: web.Request) -> str:
    """The base of URLs handed back: ``server.public_url``, else the request's Host when
    ``server.allowed_hosts`` trusts it, else the address the request came in on.  Host is the
    client's to write; echoing any value would let it plant its own host in links."""
    server = request.app[SETTINGS].server
    if server.public_url:
        return server.public_url.rstrip("/")
    bound = _bound_address(request)
    try:
        name = urlsplit("//" + request.host).hostname
    except ValueError:
        name = None
    trusted = {h.lower() for h in server.allowed_hosts} or {"localhost", server.host.lower(), _bare(bound)}
    return f"{request.scheme}://{request.host if name and name in trusted else bound}"


def _bound_address(request: web.Request) -> str:
    """host:port of this end of the connection (the listening address, wildcards resolved)."""
    server = request.app[SETTINGS].server
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = (sockname[0], sockname[1]) if isinstance(sockname, tuple) else (server.host, server.port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bare(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]").lower()


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
