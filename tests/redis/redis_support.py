"""Real redis-server processes for the plasmite-redis tests.

Each server runs on a free loopback port with its own temporary directory
and is stopped by the fixture that started it. Tests skip (with the reason)
only when Debian's ``redis-server`` is not installed, or when the
plasmite-redis distribution itself is not.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_redis() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server/redis-cli are not installed (apt-get install redis-server redis-tools)")
    pytest.importorskip("plasmite_redis", reason="plasmite-redis is not installed (pip install ./plugins/plasmite_redis)")


def free_port(cluster: bool = False) -> int:
    """A free loopback port; for a Cluster node also its bus port (+10000), at most 55535."""
    if not cluster:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    import random

    while True:
        port = random.randint(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


def _ping(port: int, password: str | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall((f"AUTH {password}\r\nPING\r\n" if password else "PING\r\n").encode())
            s.settimeout(1)
            data = b""
            while b"PONG" not in data and b"-" not in data:
                chunk = s.recv(256)
                if not chunk:
                    return False
                data += chunk
            return b"PONG" in data
    except OSError:
        return False


class RedisServer:
    """One redis-server; ``stop()``/``start()`` restart it on the same port and dir."""

    def __init__(self, workdir: Path, *args: str, port: int | None = None, password: str | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        self.port = port or free_port()
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = (tls_cert, tls_key) if tls_cert else None  # then the port speaks TLS only
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        ports = ["--port", str(self.port)]
        if self.tls:
            cert, key = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert), "--tls-key-file",
                     str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        cmd = [REDIS_SERVER, *ports, "--bind", "127.0.0.1", "--dir", str(self.dir),
               "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.dir / "log"),
               "--protected-mode", "no", *self.args]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "log").read_text(errors="replace")[-2000:] if (self.dir / "log").exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        if not self.tls:
            return _ping(self.port, self.password)
        log = self.dir / "log"
        return log.exists() and "Ready to accept connections" in log.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 30) -> str:
        cmd = [REDIS_CLI, "-p", str(self.port)]
        if self.tls:
            cmd += ["--tls", "--cacert", str(self.tls[0])]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, check=True).stdout

    def stop(self, save: bool = True) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            self.cli("shutdown", "save" if save else "nosave", timeout=10)
        except (subprocess.SubprocessError, OSError):
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class RedisCluster:
    """Three primaries with ``--cluster-enabled yes``, joined by ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path) -> None:
        self.nodes = [RedisServer(workdir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                  "--cluster-node-timeout", "5000", port=free_port(cluster=True))
                      for _ in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> "RedisCluster":
        for n in self.nodes:
            n.start()
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       capture_output=True, text=True, timeout=60, check=True)
        deadline = time.monotonic() + 60
        while True:
            states = [n.cli("cluster", "info") for n in self.nodes]
            if all("cluster_state:ok" in s for s in states):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop(save=False)


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture(tmp_path_factory):
    """A redis-server shared by the tests of one module (each test uses its own pools)."""
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"), "--busy-reply-threshold", "100").start()
    try:
        yield server
    finally:
        server.stop(save=False)


_names = iter(range(1, 1 << 30))


def unique(prefix: str = "p") -> str:
    return f"{prefix}{next(_names)}"
