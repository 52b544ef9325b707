"""persist-queue's SQLiteQueue with its defaults (pickle serializer, WAL, every put()
commits its own transaction, so it has no batch path).  A FIFO queue: reads
consume, and there is no random access by id."""

from __future__ import annotations

from bench.util import missing, poll_take, store_dir

NAME = "persist-queue"
LABEL = "persist-queue"
NOTES = {
    "batch": "no batch API: each put() commits",
    "read": "consuming get() (queue semantics)",
    "get": "queue: get(id=) removes the item, no non-destructive lookup",
    "follow": "polled get_nowait() every poll interval",
}
POLL_S = 0.0001


def available() -> str | None:
    return missing("persistqueue", "persist-queue")


def create(workdir: str, purpose: str) -> dict:
    return store_dir(workdir, "pq", purpose)


class Handle:
    def __init__(self, spec: dict):
        import persistqueue

        self._pq = persistqueue
        self.path = spec["path"]
        self.q = persistqueue.SQLiteQueue(self.path, auto_commit=True, timeout=30)

    def append(self, obj) -> None:
        self.q.put(obj)

    # No batch API: every put() commits its own transaction (auto_commit only
    # changes when gets are committed), so a "batch" would be the same loop.
    append_many = None

    def fill(self, objs) -> None:
        put = self.q.put
        for o in objs:
            put(o)

    def read(self, n: int) -> int:
        get = self.q.get_nowait
        k = 0
        try:
            while k < n:
                get()
                k += 1
        except self._pq.Empty:
            pass
        return k

    def keys(self, n: int):
        return None

    get = None

    def all_items(self) -> list:
        out = []
        try:
            while True:
                out.append(self.q.get_nowait())
        except self._pq.Empty:
            pass
        return out

    def footprint(self) -> int:
        from bench.util import dir_bytes

        return dir_bytes(self.path)

    def follow_start(self) -> None:
        pass

    def follow_next(self, timeout_s: float):
        return poll_take(self.q.get_nowait, self._pq.Empty, timeout_s, POLL_S)

    def close(self) -> None:
        try:
            self.q.close()
        except Exception:
            pass
