"""A real redis-server on loopback for the tests.

Fixtures (register with ``pytest_plugins = ["tests.redis_server"]``):

``redis_server`` (session)
    a ``redis-server`` on 127.0.0.1 and a free port, no persistence, in a temp
    dir.  ``.url`` (``redis://127.0.0.1:N/0``), ``.port``; ``.stop()`` kills it
    (connections are refused, as in an outage) and ``.start()`` brings it back
    on the SAME port, empty; ``.flush()`` empties it.  The process is killed and
    reaped at the end of the session (and at interpreter exit, as a fallback).
``redis_store`` (function)
    a ``RedisStateStore`` on that server after a ``flush()``, closed afterwards.

``redis-server`` must be on PATH (scripts/test installs the Debian package);
without it the fixture fails and says so.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from screenshot_service.state.redis import RedisStateStore

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _command(port: int, *words: str) -> bytes:
    """Send one inline command and return the first reply line ('' if nobody answers)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.recv(1024).split(b"\r\n", 1)[0]
    except OSError:
        return b""


class RedisTestServer:
    def __init__(self, executable: str, workdir: Path, *, durable: bool = False) -> None:
        self.executable = executable
        self.workdir = workdir
        self.durable = durable  # append-only file, fsynced on every write: a kill loses nothing
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        args = [
            self.executable, "--port", str(self.port), "--bind", HOST, "--save", "",
            "--appendonly", "yes" if self.durable else "no", "--appendfsync", "always",
            "--daemonize", "no", "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
            if _command(self.port, "PING") == b"+PONG":
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {START_TIMEOUT} s")

    def stop(self) -> None:
        """Kill the server (SIGKILL, like a crash): connections are refused until start()."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
            os.kill(process.pid, signal.SIGCONT)  # a frozen server dies only once it runs again
        process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a stalled Redis)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def flush(self) -> None:
        reply = _command(self.port, "FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisTestServer]:
    executable = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if executable is None:
        pytest.fail(
            "redis-server is not installed (apt-get install redis-server; scripts/test does this)",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="redis-test-") as workdir:
        server = RedisTestServer(executable, Path(workdir))
        atexit.register(server.stop)  # in case the session dies before teardown
        server.start()
        try:
            yield server
        finally:
            pid = server.pid
            server.stop()
            atexit.unregister(server.stop)
            if pid is not None:
                assert not alive(pid), f"redis-server (pid {pid}) is still running"


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisTestServer]:
    """A redis-server of the test's own that survives a SIGKILL with its data (append-only, always fsynced)."""
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisTestServer(executable, workdir, durable=True)
    server.start()
    try:
        yield server
    finally:
        pid = server.pid
        server.stop()
        if pid is not None:
            assert not alive(pid), f"redis-server (pid {pid}) is still running"


@pytest.fixture
async def redis_store(redis_server: RedisTestServer) -> AsyncIterator[RedisStateStore]:
    redis_server.start()  # a test that stopped it and failed must not break the next one
    redis_server.flush()
    store = RedisStateStore(redis_server.url)
    yield store
    await store.close()
