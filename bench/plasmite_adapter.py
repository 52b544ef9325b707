"""Plasmite through its public API only (``from plasmite import Client, Durability``),
so the figures are what a user's program gets."""

from __future__ import annotations

import os

NAME = "plasmite"
LABEL = "Plasmite"
NOTES: dict = {}

BIG_POOL = 64 << 20


def available() -> str | None:
    try:
        from plasmite import Client, Durability  # noqa: F401
    except Exception as exc:  # ImportError, or a half-installed core
        return f"plasmite core not importable ({type(exc).__name__}: {exc}); pip install ./plasmite_core"
    return None


# core modules that may use plasmite_speedups, and what each compiles
_COMPILED_MODULES = (("framescan", "ring scan and envelopes"), ("pool", "append and get"),
                     ("envelope", "Message fields, data and raw"), ("stream", "the stream's next and next_json"))


def compiled_parts() -> list[str]:
    """What of the core runs compiled in this process (empty: the pure path)."""
    import importlib

    parts = []
    for mod, what in _COMPILED_MODULES:
        try:
            if getattr(importlib.import_module(f"plasmite_core.{mod}"), "COMPILED", False):
                parts.append(what)
        except ImportError:
            pass
    return parts


def create(workdir: str, purpose: str, size: int = BIG_POOL) -> dict:
    from plasmite import Client

    pool_dir = os.path.join(workdir, "pools")
    os.makedirs(pool_dir, exist_ok=True)
    with Client(pool_dir) as c:
        c.create_pool(purpose, size_bytes=size).close()
    return {"dir": pool_dir, "name": purpose}


class Handle:
    """The operations of bench.workloads on a pool handle of the public API;
    another transport's peer subclasses it and overrides ``connect``."""

    def __init__(self, spec: dict):
        from plasmite import Durability

        self._fast = Durability.FAST
        self.client = self.connect(spec)
        self.pool = self.client.open_pool(spec["name"])
        self._stream = None

    def connect(self, spec: dict):
        from plasmite import Client

        return Client(spec["dir"])

    def append(self, obj) -> None:
        self.pool.append(obj, durability=self._fast)

    def append_json(self, buf: bytes) -> None:
        self.pool.append_json(buf, durability=self._fast)

    def append_many(self, objs) -> None:
        # Pool.extend: the bulk append (seqs as a range, no Message per value).
        self.pool.extend(objs, durability=self._fast)

    fill = append_many

    def _open(self, n: int):
        oldest, newest = self.pool.bounds()
        if oldest is None:
            return None, 0
        n = min(n, newest - oldest + 1)
        return self.pool.open_stream(since_seq=oldest, max_messages=n, timeout_ms=5000), n

    def read(self, n: int) -> int:
        s, n = self._open(n)
        if s is None:
            return 0
        k = 0
        with s:
            nxt = s.next
            while True:
                m = nxt()
                if m is None:
                    break
                m.data  # decoded
                k += 1
        return k

    def read_batch(self, n: int) -> int:
        """Decoded data in batches (``Stream.poll_data``): the bulk reader's call."""
        return self._read_batches(n, "poll_data") or 0

    def read_raw(self, n: int) -> int:
        s, n = self._open(n)
        if s is None:
            return 0
        k = 0
        with s:
            nxt = s.next_json
            while nxt() is not None:
                k += 1
        return k

    def read_raw_batch(self, n: int) -> int | None:
        """Raw envelopes in batches (``Stream.poll_json``), where the core has it."""
        return self._read_batches(n, "poll_json")

    def _read_batches(self, n: int, method: str) -> int | None:
        """Read ``n`` messages by 1,024-message calls of the stream's ``method``
        (None: this core's stream has no such method)."""
        oldest, newest = self.pool.bounds()
        if oldest is None:
            return 0
        n = min(n, newest - oldest + 1)
        s = self.pool.open_stream(since_seq=oldest, timeout_ms=5000)
        if not hasattr(s, method):
            s.close()
            return None
        k = 0
        with s:
            poll = getattr(s, method)
            while k < n:
                got = poll(min(1024, n - k))
                if not got:
                    break
                k += len(got)
        return k

    def keys(self, n: int):
        oldest, newest = self.pool.bounds()
        if oldest is None:
            return None
        return list(range(oldest, min(newest, oldest + n - 1) + 1))

    def get(self, key):
        return self.pool.get(key).data

    def all_items(self) -> list:
        s, n = self._open(1 << 62)
        if s is None:
            return []
        out = []
        with s:
            while True:
                m = s.next()
                if m is None:
                    return out
                out.append(m.data)

    def footprint(self) -> int:
        return os.path.getsize(self.pool.path)

    def info(self):
        return self.pool.info()

    def follow_start(self) -> None:
        self._stream = self.pool.open_stream(last=0)

    def follow_next(self, timeout_s: float):
        m = self._stream.next(timeout_ms=max(1, int(timeout_s * 1000)))
        return None if m is None else m.data

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self.pool.close()
        self.client.close()
