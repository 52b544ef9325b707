"""Redis Streams through redis-py against a real redis-server that the benchmark
starts on a free loopback port (appendonly yes, appendfsync no: persistence
without an fsync per write, the analogue of durability "fast") and stops by pid.
One XADD per message; batches are a non-transactional pipeline; the follower
blocks in XREAD."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import msgspec

NAME = "redis"
LABEL = "Redis Streams"
NOTES = {"footprint": "server memory (MEMORY USAGE of the stream), not a file"}

_server: dict = {}


def available() -> str | None:
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed (pip install redis)"
    if not shutil.which("redis-server"):
        return "redis-server is not installed (apt-get install redis-server)"
    return None


def start_server(workdir: str) -> dict:
    """Start redis-server on a free loopback port; returns {port, pid, proc}."""
    from bench.util import free_port, wait_port

    port = free_port()
    d = os.path.join(workdir, "redis")
    os.makedirs(d, exist_ok=True)
    proc = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", d, "--save", "", "--appendonly", "yes", "--appendfsync", "no",
            "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait_port(port, 10):
        proc.kill()
        proc.wait(5)
        raise RuntimeError("redis-server did not start listening within 10 s")
    import redis

    r = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            r.ping()
            break
        except redis.exceptions.BusyLoadingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    r.close()
    _server.update(port=port, pid=proc.pid, proc=proc)
    return _server


def stop_server() -> None:
    proc = _server.pop("proc", None)
    if proc is None:
        return
    proc.terminate()  # by its pid: the process we started
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def server_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=5)
        return out.stdout.split()[2].removeprefix("v=")
    except Exception:
        return "?"


def create(workdir: str, purpose: str) -> dict:
    import redis

    spec = {"port": _server["port"], "key": f"bench:{purpose}"}
    r = redis.Redis(host="127.0.0.1", port=spec["port"])
    r.delete(spec["key"])
    r.close()
    return spec


class Handle:
    def __init__(self, spec: dict):
        import redis

        self.key = spec["key"]
        self.r = redis.Redis(host="127.0.0.1", port=spec["port"])
        self._enc = msgspec.json.encode
        self._dec = msgspec.json.decode
        self._ids: list[bytes] = []
        self._buf: list = []

    def append(self, obj) -> None:
        self.r.xadd(self.key, {"d": self._enc(obj)})

    def append_many(self, objs) -> None:
        enc = self._enc
        p = self.r.pipeline(transaction=False)
        for o in objs:
            p.xadd(self.key, {"d": enc(o)})
        p.execute()

    def fill(self, objs) -> None:
        enc = self._enc
        p = self.r.pipeline(transaction=False)
        for o in objs:
            p.xadd(self.key, {"d": enc(o)})
        self._ids.extend(p.execute())

    def _range(self, n: int):
        start = "-"
        k = 0
        while k < n:
            chunk = self.r.xrange(self.key, start, "+", count=min(1000, n - k))
            if not chunk:
                return
            for _id, fields in chunk:
                yield fields[b"d"]
            k += len(chunk)
            start = b"(" + chunk[-1][0]

    def read(self, n: int) -> int:
        dec = self._dec
        k = 0
        for d in self._range(n):
            dec(d)
            k += 1
        return k

    def keys(self, n: int):
        return self._ids[:n] or None

    def get(self, key):
        (_id, fields), = self.r.xrange(self.key, key, key, count=1)
        return self._dec(fields[b"d"])

    def all_items(self) -> list:
        return [self._dec(d) for d in self._range(1 << 62)]

    def footprint(self) -> int:
        return int(self.r.memory_usage(self.key, samples=0) or 0)

    def follow_start(self) -> None:
        last = self.r.xrevrange(self.key, count=1)
        self._last = last[0][0] if last else b"0-0"
        self._buf = []

    def follow_next(self, timeout_s: float):
        if not self._buf:
            res = self.r.xread({self.key: self._last}, count=256, block=max(1, int(timeout_s * 1000)))
            if not res:
                return None
            entries = res[0][1]
            self._last = entries[-1][0]
            self._buf = [f[b"d"] for _i, f in reversed(entries)]
        return self._dec(self._buf.pop())

    def close(self) -> None:
        self.r.close()
