"""Helpers for the CLI end-to-end tests: run real ``pls`` processes.

Every CLI test drives ``python -m plasmite_cli`` (the same code as the ``pls``
console script) in a subprocess, with its own pool directory, and reads what a
user or a script would read: stdout, stderr, the exit code. ``PtyProcess``
gives a process a real terminal (the ``pty`` module) for the terminal-only
behaviour: receipts as text, chat input, pretty output.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PLS = [sys.executable, "-m", "plasmite_cli"]


def env_for(pool_dir: Path | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PLASMITE_DIR", None)
    if pool_dir is not None:
        env["PLASMITE_DIR"] = str(pool_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pls(*args: str, pool_dir: Path | None, input: str | bytes | None = None, timeout: float = 60,
        env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``pls ARGS`` to completion; stdout/stderr as text."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [*PLS, *args],
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=env or env_for(pool_dir),
        cwd=cwd,
    )
    proc.stdout = proc.stdout.decode("utf-8", "replace")  # type: ignore[assignment]
    proc.stderr = proc.stderr.decode("utf-8", "replace")  # type: ignore[assignment]
    return proc


def spawn(*args: str, pool_dir: Path | None, stdin=subprocess.DEVNULL, env: dict[str, str] | None = None,
          stdout=subprocess.PIPE, **kw) -> subprocess.Popen:
    return subprocess.Popen([*PLS, *args], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                            env=env or env_for(pool_dir), **kw)


def jsonl(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def error_of(proc: subprocess.CompletedProcess) -> dict:
    """The ``error`` object of the JSON envelope a piped stderr carries."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, f"no stderr; rc={proc.returncode} stdout={proc.stdout!r}"
    env = json.loads(lines[-1])
    assert set(env) == {"error"}, env
    assert "Traceback" not in proc.stderr
    return env["error"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def started_following(proc, pool_path: Path, timeout: float = 30.0) -> None:
    """Wait until ``proc`` has mapped ``pool_path`` (it has opened the pool),
    then a little longer for it to position its stream. Falls back to a fixed
    pause where /proc is not available."""
    maps = Path(f"/proc/{proc.pid}/maps")
    if not maps.exists():
        time.sleep(1.0)
        return
    target = str(pool_path.resolve())
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"follower exited early ({proc.returncode})")
        try:
            if target in maps.read_text():
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("follower never opened the pool")
        time.sleep(0.02)
    time.sleep(0.2)


class PtyProcess:
    """A ``pls`` process whose stdin, stdout and stderr are one terminal."""

    def __init__(self, *args: str, pool_dir: Path | None, env: dict[str, str] | None = None,
                 argv: list[str] | None = None) -> None:
        self.master, slave = pty.openpty()
        # No echo of typed input, so the output holds only what pls prints.
        import termios

        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.proc = subprocess.Popen(
            argv or [*PLS, *args], stdin=slave, stdout=slave, stderr=slave,
            env=env or env_for(pool_dir), start_new_session=True,
        )
        os.close(slave)
        self.buffer = b""

    def _read_some(self, timeout: float) -> bool:
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the other side closed
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def expect(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        want = needle.encode()
        while want not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; output so far: {self.text()!r}")
            if not self._read_some(min(left, 0.2)) and self.proc.poll() is not None:
                # drain whatever is left
                while self._read_some(0.05):
                    pass
                if want not in self.buffer:
                    raise AssertionError(f"process exited ({self.proc.returncode}) before {needle!r}: {self.text()!r}")
        return self.text()

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def text(self) -> str:
        return self.buffer.decode("utf-8", "replace").replace("\r\n", "\n")

    def finish(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read_some(0.05)
        while self._read_some(0.05):
            pass
        if self.proc.poll() is None:
            self.kill()
            raise AssertionError(f"process did not exit; output: {self.text()!r}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        try:
            os.close(self.master)
        except OSError:
            pass
