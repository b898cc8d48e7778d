"""A real three-primary Redis Cluster on loopback for the tests.

Fixture (register with ``pytest_plugins = ["tests.redis_cluster"]``):

``redis_cluster`` (session)
    three ``redis-server --cluster-enabled yes`` processes on free loopback
    ports (each with its own directory and cluster bus port), joined by
    ``redis-cli --cluster create ... --cluster-replicas 0``, ready once every
    node reports ``cluster_state:ok``.  ``.url`` names the first node (the
    client learns the others from it); ``.flush()`` empties every primary.
    Every process is killed and reaped at the end of the session, checked.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_server import HOST, START_TIMEOUT, alive, free_port

NODES = 3


class RedisTestCluster:
    def __init__(self, server: str, cli: str, workdir: Path) -> None:
        self.server = server
        self.cli = cli
        self.workdir = workdir
        self.ports = [free_port() for _ in range(NODES)]
        self.bus_ports = [free_port() for _ in range(NODES)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.ports[0]}/0"

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def _cli(self, *words: str, port: int | None = None) -> str:
        target = ["-h", HOST, "-p", str(port)] if port is not None else []
        done = subprocess.run([self.cli, *target, *words], capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        port = self.ports[index]
        node_dir = self.workdir / str(port)
        node_dir.mkdir(exist_ok=True)  # a restarted node finds its nodes.conf: the same node, slots and bus port
        args = [
            self.server, "--port", str(port), "--bind", HOST, "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_ports[index]), "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self.processes = [self._spawn(index) for index in range(NODES)]
        self._wait(lambda port: "PONG" in self._cli("PING", port=port), "answer PING")
        nodes = [f"{HOST}:{port}" for port in self.ports]
        created = self._cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if "All 16384 slots covered" not in created:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created}")
        self.wait_ok()

    def wait_ok(self) -> None:
        self._wait(lambda port: "cluster_state:ok" in self._cli("CLUSTER", "INFO", port=port), "report cluster_state:ok")

    def kill(self, index: int) -> None:
        """SIGKILL one primary (a crash): its slots have no server until restart()."""
        self.processes[index].kill()
        self.processes[index].wait(timeout=10)

    def restart(self, index: int) -> None:
        """The killed primary back on its port, empty, with its slots; returns once the cluster is ok."""
        self.processes[index] = self._spawn(index)
        self.wait_ok()

    def _wait(self, ready: Callable[[int], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(self.ports)
        while pending and time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a cluster node exited with {process.returncode}")
            pending = [port for port in pending if not ready(port)]
            if pending:
                time.sleep(0.05)
        if pending:
            raise RuntimeError(f"cluster nodes {pending} did not {what} within {START_TIMEOUT} s")

    def flush(self) -> None:
        for port in self.ports:
            reply = self._cli("FLUSHALL", port=port)
            if "OK" not in reply:
                raise RuntimeError(f"FLUSHALL on {port} failed: {reply!r}")

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in processes:
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisTestCluster]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("redis-server and redis-cli are not installed (apt-get install redis-server)", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="redis-cluster-test-") as workdir:
        cluster = RedisTestCluster(server, cli, Path(workdir))
        atexit.register(cluster.stop)  # in case the session dies before teardown
        try:
            cluster.start()
            yield cluster
        finally:
            pids = cluster.pids
            cluster.stop()
            atexit.unregister(cluster.stop)
            left = [pid for pid in pids if alive(pid)]
            assert not left, f"redis-server cluster nodes still running: {left}"
