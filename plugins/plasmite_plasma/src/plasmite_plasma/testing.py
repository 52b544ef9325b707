"""Run a real ``pls plasma`` process for tests and the benchmark.

``with GatewayProcess(pool_dir, env={...}) as gw:`` picks free loopback
ports, starts the gateway, waits for its "listening" log line and stops it
with SIGTERM on exit; ``restart()`` keeps the same ports, as a redeploy does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess:
    def __init__(self, pool_dir: str | os.PathLike, *args: str, env: dict | None = None,
                 startup_timeout: float = 30.0) -> None:
        self.pool_dir = Path(pool_dir)
        self.args = list(args)
        self.port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.env = {"PLASMA_HOST": "127.0.0.1", "PLASMA_PORT": str(self.port),
                    "PLASMA_GRPC_PORT": str(self.grpc_port), "PLASMA_METRICS_PORT": str(self.metrics_port),
                    "PLASMA_POOL_DIR": str(self.pool_dir), **(env or {})}
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="plasmite-plasma-test-")
        self.stderr_path = Path(self._tmp.name) / "stderr.log"
        self.stdout_path = Path(self._tmp.name) / "stdout.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("PLASMA_TLS_CERT_FILE") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""

    def error_log(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]

    def access_log(self) -> list[dict]:
        try:
            text = self.stdout_path.read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def start(self) -> "GatewayProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLASMA_")}
        env.update(self.env)
        cmd = [sys.executable, "-m", "plasmite_cli", "plasma", *self.args]
        mark = len(self.stderr())
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.stdout_path, "ab"),
                                     stderr=open(self.stderr_path, "ab"), env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if '"msg": "listening"' in self.stderr()[mark:]:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.stderr()[mark:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start within {self.startup_timeout}s: {self.stderr()[mark:]}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> "GatewayProcess":
        self.stop()
        return self.start()

    def __enter__(self) -> "GatewayProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._tmp.cleanup()
