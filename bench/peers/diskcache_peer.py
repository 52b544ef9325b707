"""diskcache: Deque for the log workloads (append, extend in one transaction,
iteration, popleft for a consumer) and Index for get by key (Deque indexing is a
linear scan).  Values are pickled, as diskcache does by default."""

from __future__ import annotations

import os

from bench.util import missing, poll_take, store_dir

NAME = "diskcache"
LABEL = "diskcache"
NOTES = {
    "get": "diskcache.Index[key] (a second store filled with the same messages)",
    "follow": "polled popleft() every poll interval",
}
POLL_S = 0.0001


def available() -> str | None:
    return missing("diskcache", "diskcache")


def create(workdir: str, purpose: str) -> dict:
    return store_dir(workdir, "dc", purpose)


class Handle:
    def __init__(self, spec: dict):
        import diskcache

        self._dc = diskcache
        self.path = spec["path"]
        self.dq = diskcache.Deque(directory=os.path.join(self.path, "deque"))
        self._index = None

    def append(self, obj) -> None:
        self.dq.append(obj)

    def append_many(self, objs) -> None:
        with self.dq.transact():
            self.dq.extend(objs)

    def fill(self, objs) -> None:
        self.append_many(objs)
        idx = self._idx()
        base = len(idx)
        with idx.transact():
            for k, o in enumerate(objs):
                idx[base + k] = o

    def _idx(self):
        if self._index is None:
            self._index = self._dc.Index(os.path.join(self.path, "index"))
        return self._index

    def read(self, n: int) -> int:
        k = 0
        for _o in self.dq:
            k += 1
            if k >= n:
                break
        return k

    def keys(self, n: int):
        return list(range(min(n, len(self._idx()))))

    def get(self, key):
        return self._idx()[key]

    def all_items(self) -> list:
        return list(self.dq)

    def footprint(self) -> int:
        from bench.util import dir_bytes

        return dir_bytes(os.path.join(self.path, "deque"))

    def follow_start(self) -> None:
        pass

    def follow_next(self, timeout_s: float):
        return poll_take(self.dq.popleft, IndexError, timeout_s, POLL_S)

    def close(self) -> None:
        self.dq.cache.close()
        if self._index is not None:
            self._index.cache.close()
