"""Plasmite on Redis (plasmite-redis) through its public API, against the same
redis-server as the raw Redis Streams peer (started by the runner), so the
two rows differ only by what the transport adds: one Lua script per append
call or batch (seq, time and trim assigned in Redis), blocking XREAD tails,
and the Plasmite envelope."""

from __future__ import annotations

from bench import plasmite_adapter

NAME = "plasmite-redis"
LABEL = "Plasmite on Redis"
NOTES = {"footprint": "server memory (MEMORY USAGE of the pool's stream), not a file",
         "follow": "blocks in XREAD"}

BIG_POOL = 1 << 30  # never trims during the benchmark, like the raw stream


def available() -> str | None:
    try:
        import plasmite_redis  # noqa: F401
    except ImportError:
        return "plasmite-redis is not installed (pip install ./plugins/plasmite_redis)"
    from bench.peers import redis_streams

    return redis_streams.available()


def _url() -> str:
    from bench.peers.redis_streams import _server

    return f"redis://127.0.0.1:{_server['port']}"


def create(workdir: str, purpose: str) -> dict:
    from plasmite_redis import RedisClient

    name = f"bench-{purpose}"
    with RedisClient(_url()) as c:
        try:
            c.delete_pool(name)
        except Exception:
            pass
        c.create_pool(name, BIG_POOL)
    return {"url": _url(), "name": name}


class Handle(plasmite_adapter.Handle):
    """The local peer's operations; what differs is the client, the batch
    append (no ``extend``), the stream loops and the footprint."""

    def connect(self, spec: dict):
        from plasmite_redis import RedisClient

        return RedisClient(spec["url"])

    def append_many(self, objs) -> None:
        self.pool.append_many(objs, durability=self._fast)

    fill = append_many

    def _open(self, n: int):
        oldest, newest = self.pool.bounds()
        if oldest is None:
            return None
        return self.pool.open_stream(since_seq=oldest, max_messages=min(n, newest - oldest + 1), timeout_ms=5000)

    def read(self, n: int) -> int:
        s = self._open(n)
        if s is None:
            return 0
        k = 0
        with s:
            for m in s.messages():
                m.data  # decoded
                k += 1
        return k

    def read_raw(self, n: int) -> int:
        s = self._open(n)
        if s is None:
            return 0
        k = 0
        with s:
            while s.next_json() is not None:
                k += 1
        return k

    read_raw_batch = None  # no rows: the local peer's batch paths only
    read_batch = None

    def all_items(self) -> list:
        s = self._open(1 << 62)
        if s is None:
            return []
        with s:
            return [m.data for m in s.messages()]

    def footprint(self) -> int:
        r = self.client._server.r
        return int(r.memory_usage(self.pool._keys[1], samples=0) or 0)
