"""HTTPS with TLS 1.2 as the floor: 1.1 refused by the server, 1.2 and 1.3 served.

The certificate is made at test time (``cryptography``).  The TLS 1.1 client is
deliberately permissive (security level 0) and is shown to work against a
server that allows 1.1, so its refusal by ours demonstrably comes from our
server's minimum version, not from the client's own OpenSSL policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from screenshot_service.app import create_app
from screenshot_service.browser.pool import BrowserPool
from screenshot_service.config import ConfigError, ServerConfig
from screenshot_service.state.sqlite import SqliteStateStore
from screenshot_service.tls import server_ssl_context
from tests.conftest import TestSite as Site
from tests.conftest import base_settings, wait_for


@dataclass
class Cert:
    cert: Path
    key: Path


def make_cert(directory: Path) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    paths = Cert(cert=directory / "cert.pem", key=directory / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def client_context(version: ssl.TLSVersion, cert: Cert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3's default security level forbids TLS < 1.2 on the client too;
        # lower it so the handshake is attempted and the server has to say no.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_verify_locations(cafile=str(cert.cert))
    return context


async def https_get(port: int, path: str, context: ssl.SSLContext) -> tuple[str, str]:
    """(negotiated TLS version, first line of the HTTP response) over a raw TLS stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    try:
        version = writer.get_extra_info("ssl_object").version()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = (await reader.readline()).decode().strip()
        await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    return version, status_line


@pytest.fixture
async def https_app(tmp_path: Path, test_site: Site, shared_pool: BrowserPool) -> AsyncIterator[tuple[int, Cert]]:
    cert = make_cert(tmp_path)
    settings = base_settings(tmp_path, test_site.port, server={"tls_cert": str(cert.cert), "tls_key": str(cert.key)})
    ssl_context = server_ssl_context(settings.server)
    assert ssl_context is not None and ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    app = create_app(settings, pool=shared_pool, state=SqliteStateStore(settings.state.sqlite.path))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, cert
    await runner.cleanup()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_12_and_13_are_served(https_app: tuple[int, Cert], version: ssl.TLSVersion) -> None:
    port, cert = https_app
    negotiated, status = await https_get(port, "/healthz", client_context(version, cert))
    assert negotiated == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert status == "HTTP/1.1 200 OK"


async def test_tls_11_is_refused_by_the_server(https_app: tuple[int, Cert]) -> None:
    port, cert = https_app
    old_client = client_context(ssl.TLSVersion.TLSv1_1, cert)
    # Control: the same client completes a TLS 1.1 handshake with a server that allows it.
    if not await _tls11_control_works(cert, old_client):
        pytest.skip("this OpenSSL build cannot speak TLS 1.1 at all; nothing to refuse")
    # asyncio's server drops the connection on a failed handshake (the client may see
    # a reset rather than the alert); the in-memory test below shows who said no.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await https_get(port, "/healthz", old_client)


@pytest.mark.parametrize(("version", "expected"), [
    (ssl.TLSVersion.TLSv1_1, None), (ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
])
def test_the_server_context_itself_refuses_tls_11(tmp_path: Path, version: ssl.TLSVersion, expected: str | None) -> None:
    """The handshake between our server context and a client, byte by byte in memory."""
    cert = make_cert(tmp_path)
    server_context = server_ssl_context(ServerConfig(tls_cert=str(cert.cert), tls_key=str(cert.key)))
    assert server_context is not None
    client, server = handshake_in_memory(server_context, client_context(version, cert))
    if expected is None:
        assert isinstance(server.error, ssl.SSLError) and server.error.reason == "UNSUPPORTED_PROTOCOL"
        # ...and the client got the server's protocol_version alert.
        assert isinstance(client.error, ssl.SSLError) and client.error.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    else:
        assert client.error is None and server.error is None
        assert client.tls.version() == server.tls.version() == expected


@dataclass
class Side:
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    done: bool = False
    error: ssl.SSLError | None = None

    def step(self) -> None:
        if self.done or self.error is not None:
            return
        try:
            self.tls.do_handshake()
            self.done = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            self.error = exc


def handshake_in_memory(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> tuple[Side, Side]:
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = Side(client_context.wrap_bio(c_in, c_out, server_hostname="localhost"), c_in, c_out)
    server = Side(server_context.wrap_bio(s_in, s_out, server_side=True), s_in, s_out)
    for _ in range(10):
        client.step()
        server.incoming.write(client.outgoing.read())
        server.step()
        client.incoming.write(server.outgoing.read())  # an alert travels too
        client.step()
        if (client.done or client.error) and (server.done or server.error):
            break
    return client, server


async def _tls11_control_works(cert: Cert, client: ssl.SSLContext) -> bool:
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(str(cert.cert), str(cert.key))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        # Finish the TLS close here, so no half-closed socket outlives the test.
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=permissive)
    try:
        negotiated, status = await https_get(server.sockets[0].getsockname()[1], "/", client)
    except ssl.SSLError:
        return False
    finally:
        server.close()
        await server.wait_closed()
    return negotiated == "TLSv1.1" and status == "HTTP/1.1 200 OK"


@pytest.mark.parametrize(("cert", "key"), [("/etc/cert.pem", ""), ("", "/etc/key.pem")])
def test_cert_and_key_must_come_together(cert: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        server_ssl_context(ServerConfig(tls_cert=cert, tls_key=key))
    assert "server.tls_cert" in str(error.value) and "server.tls_key" in str(error.value)


def test_unreadable_cert_names_both_keys(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"server\.tls_cert = .*server\.tls_key = .*could not be loaded"):
        server_ssl_context(ServerConfig(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "none.pem")))
    assert server_ssl_context(ServerConfig()) is None  # plain HTTP by default


def test_serve_refuses_half_a_tls_config(tmp_path: Path) -> None:
    env = {**os.environ, "SCREENSHOT_SERVER_TLS_CERT": str(tmp_path / "cert.pem"),
           "SCREENSHOT_STATE_SQLITE_PATH": str(tmp_path / "state.sqlite3")}
    result = subprocess.run([sys.executable, "-m", "screenshot_service", "serve", "--no-bootstrap-key"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "server.tls_cert" in result.stderr and "server.tls_key" in result.stderr


@pytest.mark.slow
async def test_serve_speaks_https_from_config(tmp_path: Path, test_site: Site) -> None:
    """The real command line: tls_cert/tls_key in the file, TLS 1.2 client, /readyz 200."""
    from tests.test_cli import CLI, free_port

    cert = make_cert(tmp_path)
    port = free_port()
    cfg = tmp_path / "service.toml"
    cfg.write_text(
        f'[server]\nport = {port}\ntls_cert = "{cert.cert}"\ntls_key = "{cert.key}"\ndrain_seconds = 0.5\n'
        f"[browser]\npool_size = 1\n"
        f'[storage.local]\npath = "{tmp_path / "captures"}"\n'
        f'[state.sqlite]\npath = "{tmp_path / "state.sqlite3"}"\n'
    )
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(cfg), "--no-bootstrap-key",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )
    try:
        status = ""
        context = client_context(ssl.TLSVersion.TLSv1_2, cert)

        async def ready_or_exited() -> bool:
            nonlocal status
            with contextlib.suppress(OSError):
                _, status = await https_get(port, "/readyz", context)
            return status.endswith("200 OK") or process.returncode is not None

        await wait_for(ready_or_exited, 90)  # start-up includes launching and warming Chromium
        assert status == "HTTP/1.1 200 OK", f"serve exited with {process.returncode}" if process.returncode else status
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await https_get(port, "/healthz", client_context(ssl.TLSVersion.TLSv1_1, cert))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
