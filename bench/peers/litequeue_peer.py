"""litequeue: a SQLite-backed queue (WAL, synchronous=NORMAL).  Messages are
strings, so the JSON is encoded with msgspec; reads are consuming pop()s; get by
message_id is indexed."""

from __future__ import annotations

import os
import time

import msgspec

NAME = "litequeue"
LABEL = "litequeue"
NOTES = {
    "read": "consuming pop() (queue semantics); each pop scans the queued rows, so it slows as the queue grows",
    "follow": "polled pop() every poll interval",
}
POLL_S = 0.0001


def available() -> str | None:
    try:
        import litequeue  # noqa: F401
    except ImportError:
        return "litequeue is not installed (pip install litequeue)"
    return None


def create(workdir: str, purpose: str) -> dict:
    return {"path": os.path.join(workdir, f"lq-{purpose}.db")}


class Handle:
    def __init__(self, spec: dict):
        import litequeue

        self.path = spec["path"]
        self.q = litequeue.LiteQueue(self.path, timeout=30)
        self._enc = msgspec.json.encode
        self._dec = msgspec.json.decode
        self._ids: list[str] = []

    def append(self, obj) -> None:
        self.q.put(self._enc(obj).decode())

    def append_many(self, objs) -> None:
        enc = self._enc
        put = self.q.put
        with self.q.transaction("IMMEDIATE"):
            for o in objs:
                put(enc(o).decode())

    def fill(self, objs) -> None:
        enc = self._enc
        put = self.q.put
        with self.q.transaction("IMMEDIATE"):
            self._ids.extend(put(enc(o).decode()).message_id for o in objs)

    def read(self, n: int) -> int:
        pop = self.q.pop
        dec = self._dec
        k = 0
        while k < n:
            m = pop()
            if m is None:
                break
            dec(m.data)
            k += 1
        return k

    def keys(self, n: int):
        return self._ids[:n] or None

    def get(self, key):
        return self._dec(self.q.get(key).data)

    def all_items(self) -> list:
        # verification only: a plain SELECT over litequeue's table (pop() is ~1k/s)
        rows = self.q.conn.execute(f"SELECT data FROM {self.q.table} ORDER BY rowid")
        return [self._dec(r[0]) for r in rows]

    def footprint(self) -> int:
        self.q.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def follow_start(self) -> None:
        pass

    def follow_next(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while True:
            m = self.q.pop()
            if m is not None:
                return self._dec(m.data)
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)

    def close(self) -> None:
        self.q.close()
