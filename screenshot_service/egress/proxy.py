"""The forward proxy every browser request goes through: resolve once, check, connect to that IP.

Checking a URL up front cannot stop redirects, subresources or DNS rebinding
(a name that is public for the check and 127.0.0.1 for the browser).  So
Chromium talks only to this proxy, which resolves each host once, checks every
address, and connects to an address it checked.

Plain HTTP is one request per client connection (``Connection: close`` both
ways): the proxy never has to find where a body ends, and every request gets
its own check.  CONNECT (https, wss) is a byte tunnel.  Each capture can get
its own port (``open_channel``), so refusals are attributed to the capture.
A capture with an upstream proxy (``ProxyChannel.upstream``) is checked the same
way, then chained to that proxy instead of the target (chain.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from screenshot_service.egress import chain, dial
from screenshot_service.egress.channel import ProxyChannel
from screenshot_service.egress.errors import InvalidUrl, TargetUnreachable
from screenshot_service.egress.http1 import (
    HEAD_LIMIT,
    PROXY,
    REFUSED,
    UNREACHABLE,
    Refused,
    Request,
    build_head,
    end_to_end,
    parse_request,
    respond,
)
from screenshot_service.egress.policy import Address, EgressPolicy
from screenshot_service.egress.relay import Reader, Writer, pipe, relay_response, splice
from screenshot_service.egress.resolver import Resolver
from screenshot_service.egress.upstream import Upstream
from screenshot_service.egress.urls import parse_target_url

log = logging.getLogger("screenshot_service.egress.proxy")

class EgressProxy:
    """An in-process HTTP forward proxy enforcing ``policy`` on every connection it opens."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver,
        *,
        host: str = "127.0.0.1",
        connect_timeout: float = 10.0,
    ) -> None:
        self.policy, self.resolver, self.host = policy, resolver, host
        self.connect_timeout = connect_timeout  # for all of a name's addresses together
        self.idle_timeout = 60.0  # for a request head: Chromium preconnects sockets it may never use
        self.linger = 30.0  # how long a half-closed tunnel may still send the other way
        self._channels: set[ProxyChannel] = set()
        self._default: ProxyChannel | None = None

    async def start(self) -> None:
        if self._default is None:
            self._default = await self.open_channel()

    async def stop(self) -> None:
        for channel in list(self._channels):
            await channel.close()
        self._default = None

    async def __aenter__(self) -> EgressProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def channel(self) -> ProxyChannel:
        if self._default is None:
            raise RuntimeError("EgressProxy.start() has not been called")
        return self._default

    @property
    def port(self) -> int:
        return self.channel.port

    @property
    def proxy_server(self) -> str:
        return self.channel.proxy_server

    async def open_channel(self, blocked_hosts: Callable[[str], bool] | None = None) -> ProxyChannel:
        channel = ProxyChannel(self.host, self._handle, self._channels.discard, blocked_hosts)
        await channel.start()
        self._channels.add(channel)
        return channel

    # ------------------------------------------------------------------ one connection

    async def _handle(self, channel: ProxyChannel, reader: Reader, writer: Writer) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            return
        except asyncio.LimitOverrunError:
            return await respond(writer, Refused(431, "request head too large"))
        channel.requests += 1
        try:
            request = parse_request(head)
            if request.method == "CONNECT":
                await self._tunnel(channel, request.target, reader, writer)
            else:
                await self._forward(channel, request, reader, writer)
        except Refused as refused:
            await respond(writer, refused)

    async def _open(self, channel: ProxyChannel, host: str, port: int) -> tuple[Reader, Writer]:
        """Resolve ``host`` once, check every address, connect to a checked one."""
        connection = await dial.connect_any(await self._checked(channel, host, port), port, self.connect_timeout)
        if connection is not None:
            return connection
        failure = f"could not connect to {host} port {port}"
        channel.unreachable.append((host, failure))
        log.info("egress unreachable host=%s port=%d", host, port)
        raise Refused(502, failure, verdict=UNREACHABLE)

    async def _checked(self, channel: ProxyChannel, host: str, port: int) -> list[Address]:
        """Every address of ``host``, once the block lists and the egress policy let it through."""
        # The blocklist goes first: a blocklisted name costs (and leaks) no DNS lookup.
        if channel.blocked_hosts is not None and channel.blocked_hosts(host):
            reason = "blocklist"
        else:
            try:
                return await dial.resolve_checked(self.policy, self.resolver, host, port, self.own_ports)
            except TargetUnreachable as error:
                channel.unreachable.append((host, error.message))
                raise Refused(502, error.message, verdict=UNREACHABLE) from None
            except dial.Blocked as blocked:
                reason = blocked.reason
        channel.blocked.append((host, reason))
        log.info("egress blocked host=%s port=%d: %s", host, port, reason)
        raise Refused(403, f"blocked by egress policy: {reason}", verdict=REFUSED)

    @property
    def own_ports(self) -> set[int]:
        return {c.port for c in self._channels}

    async def _via_upstream(
        self, channel: ProxyChannel, upstream: Upstream, host: str, port: int, *, tunnel: bool
    ) -> tuple[Reader, Writer]:
        """A connection to the capture's upstream proxy for ``host`` (already checked), tunnelled
        to ``host:port`` when ``tunnel``; the upstream's failure is answered as PROXY."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        try:
            up_reader, up_writer = await chain.connect(
                self.policy, self.resolver, upstream, host, own_ports=self.own_ports, timeout=self.connect_timeout)
            try:
                if tunnel:
                    await chain.open_tunnel(up_reader, up_writer, upstream, host, port, max(0.1, deadline - loop.time()))
            except BaseException:
                up_writer.close()
                raise
        except chain.ProxyFailed as failed:
            raise self._proxy_failed(channel, failed.failure) from None
        return up_reader, up_writer

    def _proxy_failed(self, channel: ProxyChannel, failure: chain.ProxyFailure) -> Refused:
        channel.proxy_failures.append(failure)
        log.info("egress upstream proxy %s failed for host=%s: %s%s", failure.proxy, failure.target, failure.kind,
                 f" (HTTP {failure.status})" if failure.status is not None else "")
        return Refused(403 if failure.kind == chain.BLOCKED else 502, failure.message, verdict=PROXY)

    async def _tunnel(self, channel: ProxyChannel, authority: str, reader: Reader, writer: Writer) -> None:
        _, sep, port_text = authority.rpartition(":")
        if not sep or not port_text.isdigit() or any(c in authority for c in "/?#\\@"):
            raise Refused(400, "CONNECT needs host:port")
        try:
            target = parse_target_url(f"http://{authority}/", what="CONNECT target")
        except InvalidUrl as error:
            raise Refused(400, error.message) from None
        upstream = channel.upstream
        if upstream is None:
            up_reader, up_writer = await self._open(channel, target.host, target.port)
        else:
            await self._checked(channel, target.host, target.port)  # nothing goes upstream before this
            up_reader, up_writer = await self._via_upstream(channel, upstream, target.host, target.port, tunnel=True)
        try:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await splice(pipe(reader, up_writer), pipe(up_reader, writer), half_close=True, linger=self.linger)
        finally:
            up_writer.close()

    async def _forward(
        self, channel: ProxyChannel, request: Request, reader: Reader, writer: Writer
    ) -> None:
        scheme, sep, rest = request.target.partition("://")
        if not sep or scheme.lower() == "https":
            raise Refused(400, "a proxy request needs an absolute http:// URI (https goes through CONNECT)")
        if scheme.lower() != "http":
            reason = f"scheme {scheme.lower()!r} is not allowed"
            channel.blocked.append((rest.partition("/")[0], reason))
            raise Refused(403, f"blocked by egress policy: {reason}", verdict=REFUSED)
        try:
            url = parse_target_url(request.target, what="proxy request", max_length=HEAD_LIMIT)
        except InvalidUrl as error:
            raise Refused(400, error.message) from None
        # Origin-form exactly as the client sent it (the canonical url may re-encode).
        rest = rest.partition("#")[0]
        path = rest[min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest)) :]
        path = path if path.startswith("/") else "/" + path
        # RFC 9112 §3.2.2: a proxy replaces Host with the authority of the absolute URI.
        fields = [
            ("Host", url.authority),
            *((n, v) for n, v in end_to_end(request.fields) if n.lower() != "host"),
        ]
        upstream = channel.upstream
        intercept: Callable[[int], Refused | None] | None = None
        if upstream is None:
            up_reader, up_writer = await self._open(channel, url.host, url.port)
            start = f"{request.method} {path} {request.version}"
        else:
            await self._checked(channel, url.host, url.port)  # nothing goes upstream before this
            up_reader, up_writer = await self._via_upstream(channel, upstream, url.host, url.port, tunnel=False)
            start = f"{request.method} http://{url.authority}{path} {request.version}"  # absolute form, to a proxy
            if upstream.authorization is not None:
                fields.append(("Proxy-Authorization", upstream.authorization))

            def on_status(status: int) -> Refused | None:  # a 407 is the upstream's, never the origin's
                return self._proxy_failed(channel, chain.failure_for(status, upstream, url.host)) if status == 407 else None
            intercept = on_status
        try:
            up_writer.write(build_head(start, fields))
            await up_writer.drain()
            # The response decides the end: once it is copied the connection closes,
            # so a client that stops early (or never sends EOF) cannot pin sockets.
            await splice(pipe(reader, up_writer), relay_response(up_reader, writer, intercept),
                         half_close=False, linger=self.linger)
        finally:
            up_writer.close()


