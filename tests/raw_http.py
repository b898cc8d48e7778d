"""HTTP over a bare socket, for requests no HTTP client will send (malformed on purpose)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

# What aiohttp's parser refuses before any handler or middleware runs.
SECRET = b"sk_never_echoed"
LONG_REQUEST_LINE = b"GET /v1/screenshot?api_key=" + SECRET + b"&url=http://example.com/&css=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
NUL_IN_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-API-Key: " + SECRET + b"\x00b\r\n\r\n"
LONG_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"b" * 9000 + b"\r\n\r\n"
GARBAGE_LINE = b"HELLO THERE\r\n\r\n"
NOT_HTTP = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32 + b"\r\n\r\n"  # a TLS ClientHello's start
MALFORMED = {"long request line": LONG_REQUEST_LINE, "NUL in a header": NUL_IN_HEADER,
             "long header": LONG_HEADER, "garbage request line": GARBAGE_LINE, "TLS to a plain port": NOT_HTTP}


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(port: int, data: bytes, timeout: float = 15.0) -> RawAnswer:
    """Send ``data`` as it is and read one answer (Content-Length framed, or to the close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = headers.get("content-length")
            body = await (reader.readexactly(int(length)) if length is not None else reader.read())
        return RawAnswer(status, headers, body)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
