"""Run a real ``pls plasma`` process for tests and the benchmark.

``with GatewayProcess(pool_dir, env={...}) as gw:`` picks free loopback
ports, starts the gateway, waits for its "listening" log line and stops it
with SIGTERM on exit; ``restart()`` keeps the same ports, as a redeploy does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from plasmite_core.testing.process import ServiceProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess(ServiceProcess):
    label = "gateway"
    stop_timeout = 20.0

    def __init__(self, pool_dir: str | os.PathLike, *args: str, env: dict | None = None,
                 startup_timeout: float = 30.0) -> None:
        super().__init__(startup_timeout, "plasmite-plasma-test-")
        self.pool_dir = Path(pool_dir)
        self.args = list(args)
        self.port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.env = {"PLASMA_HOST": "127.0.0.1", "PLASMA_PORT": str(self.port),
                    "PLASMA_GRPC_PORT": str(self.grpc_port), "PLASMA_METRICS_PORT": str(self.metrics_port),
                    "PLASMA_POOL_DIR": str(self.pool_dir), **(env or {})}
        self.stdout_path = self.tmp / "stdout.log"

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
        with open(self.stdout_path, "ab") as out:  # the child keeps its own copy
            self._launch(cmd, env, lambda err: '"msg": "listening"' in err, keep_log=True, stdout=out, poll_s=0.05)
        return self

    def restart(self) -> "GatewayProcess":
        self.stop()
        return self.start()
