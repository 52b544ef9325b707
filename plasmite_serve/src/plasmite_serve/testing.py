"""Run a real ``plasmite serve`` process for tests and benchmarks.

``with ServerProcess(pool_dir, "--token", "t") as server: ...`` starts
``python -m plasmite_serve`` on an ephemeral loopback port, waits until it
listens (it publishes its address through ``PLASMITE_SERVE_READY_FILE``) and
stops it with SIGTERM on exit. Tests of this package use it; so can users who
want an end-to-end fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class ServerProcess:
    def __init__(self, pool_dir: str | os.PathLike, *args: str, bind: str = "127.0.0.1:0",
                 https: bool | None = None, env: dict | None = None, startup_timeout: float = 20.0,
                 wrapper: list[str] | tuple[str, ...] = ()) -> None:
        self.pool_dir = Path(pool_dir)
        self.args = list(args)
        self.bind = bind
        self.https = https if https is not None else any(a in ("--tls-cert", "--tls-self-signed") for a in args)
        self.env = env
        self.startup_timeout = startup_timeout
        self.wrapper = list(wrapper)  # e.g. ["prlimit", "--nofile=256"]: a command that execs the server
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="plasmite-serve-test-")
        self.stderr_path = Path(self._tmp.name) / "stderr.log"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.address}"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""

    def start(self) -> "ServerProcess":
        ready = Path(self._tmp.name) / "ready"
        if ready.exists():
            ready.unlink()
        env = dict(os.environ)
        env.update(self.env or {})
        env["PLASMITE_SERVE_READY_FILE"] = str(ready)
        cmd = [*self.wrapper, sys.executable, "-m", "plasmite_serve", "--dir", str(self.pool_dir), "--bind", self.bind, *self.args]
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if ready.exists():
                self.address = ready.read_text().strip()
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"server did not start within {self.startup_timeout}s: {self.stderr()}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._tmp.cleanup()
