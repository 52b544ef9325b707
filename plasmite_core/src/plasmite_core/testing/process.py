"""A service in a child process, for end-to-end tests and benchmarks.

``plasmite_serve.testing.ServerProcess`` (``pls serve``) and
``plasmite_plasma.testing.GatewayProcess`` (``pls plasma``) build on it: a
subclass says how to start its command and when it is ready; starting,
waiting, reporting a failed start with the child's stderr, and stopping with
SIGTERM (then SIGKILL) are written here once. Needs no pytest.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


class ServiceProcess:
    """One child service; ``with`` starts it and stops it (and drops its temp files)."""

    label = "service"  # names the child in start failures
    stop_timeout = 15.0  # seconds SIGTERM has before SIGKILL

    def __init__(self, startup_timeout: float, tmp_prefix: str) -> None:
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix=tmp_prefix)
        self.stderr_path = Path(self._tmp.name) / "stderr.log"

    @property
    def tmp(self) -> Path:
        """A private directory that lives as long as this object's ``with``."""
        return Path(self._tmp.name)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""

    def start(self) -> Any:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def _launch(self, cmd: list[str], env: dict[str, str], ready: Callable[[str], bool], *, keep_log: bool = False,
                stdout: Any = subprocess.DEVNULL, poll_s: float = 0.02) -> None:
        """Start ``cmd`` and wait until ``ready(stderr of this start)`` holds.

        The stderr log starts afresh unless ``keep_log`` (then each start
        appends to it). Raises RuntimeError with that stderr when the child
        exits first or is not ready within ``startup_timeout``."""
        mark = len(self.stderr()) if keep_log else 0
        with open(self.stderr_path, "ab" if keep_log else "wb") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if ready(self.stderr()[mark:]):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {self.stderr()[mark:]}")
            time.sleep(poll_s)
        self.stop()
        raise RuntimeError(f"{self.label} did not start within {self.startup_timeout}s: {self.stderr()[mark:]}")

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL if it does not exit in ``stop_timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()
