"""Run a real ``plasmite serve`` process for tests and benchmarks.

``with ServerProcess(pool_dir, "--token", "t") as server: ...`` starts
``python -m plasmite_serve`` on an ephemeral loopback port, waits until it
listens (it publishes its address through ``PLASMITE_SERVE_READY_FILE``) and
stops it with SIGTERM on exit. Tests of this package use it; so can users who
want an end-to-end fixture.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from plasmite_core.testing.process import ServiceProcess


class ServerProcess(ServiceProcess):
    label = "server"

    def __init__(self, pool_dir: str | os.PathLike, *args: str, bind: str = "127.0.0.1:0",
                 https: bool | None = None, env: dict | None = None, startup_timeout: float = 20.0,
                 wrapper: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(startup_timeout, "plasmite-serve-test-")
        self.pool_dir = Path(pool_dir)
        self.args = list(args)
        self.bind = bind
        self.https = https if https is not None else any(a in ("--tls-cert", "--tls-self-signed") for a in args)
        self.env = env
        self.wrapper = list(wrapper)  # e.g. ["prlimit", "--nofile=256"]: a command that execs the server
        self.address = ""

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.address}"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def start(self) -> "ServerProcess":
        ready = self.tmp / "ready"
        if ready.exists():
            ready.unlink()
        env = dict(os.environ)
        env.update(self.env or {})
        env["PLASMITE_SERVE_READY_FILE"] = str(ready)
        cmd = [*self.wrapper, sys.executable, "-m", "plasmite_serve", "--dir", str(self.pool_dir), "--bind", self.bind, *self.args]
        self._launch(cmd, env, lambda _err: ready.exists())
        self.address = ready.read_text().strip()
        return self
