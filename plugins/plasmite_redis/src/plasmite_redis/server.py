"""One Redis deployment (a server, a primary behind Sentinel's address, or a
Cluster) as seen by a client: lazy connection, loaded scripts, error mapping.

Commands are not retried by redis-py: an append whose reply was lost would be
stored twice. Followers reconnect on their own (``stream.py``), since reads
are safe to repeat.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import redis
from redis import exceptions as rx
from redis.backoff import NoBackoff
from redis.retry import Retry

from plasmite_core.errors import IoError

from . import scripts
from .errors import map_error
from .location import Location

# Blocking reads wait in slices of this many ms, so a server that vanished
# without closing the socket is noticed within one slice plus the socket timeout.
BLOCK_SLICE_MS = 5000
SOCKET_TIMEOUT_S = 15.0


class Server:
    def __init__(self, loc: Location) -> None:
        self.loc = loc
        self.where = loc.server_safe
        self._lock = threading.Lock()
        self._r: Any = None
        self.cluster = False
        self._shas: dict[str, str] = {}
        self.hubs: dict[str, Any] = {}  # async waiting, see stream._Hub

    # ------------------------------------------------------------ connecting
    def _options(self) -> dict[str, Any]:
        return {
            "socket_connect_timeout": 5.0,
            "socket_timeout": SOCKET_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
        }

    @property
    def r(self):
        r = self._r
        if r is None:
            with self._lock:
                if self._r is None:
                    self._r = self._connect()
                r = self._r
        return r

    def _connect(self):
        url = self.loc.server_url()
        try:
            plain = redis.Redis.from_url(url, **self._options())
            cluster = self.loc.cluster
            if cluster is None:
                cluster = plain.info("cluster").get("cluster_enabled", 0) in (1, "1")
            if not cluster:
                return plain
            plain.close()
            from redis.cluster import RedisCluster

            if self.loc.db:
                from plasmite_core.errors import UsageError

                raise UsageError(f"Redis Cluster at {self.where} has only database 0",
                                 hint="drop ?db= from the ref")
            self.cluster = True
            return RedisCluster.from_url(self.loc.server_url(with_db=False), **self._options())
        except rx.RedisError as exc:
            raise map_error(exc, self.where) from None

    def _sha(self, name: str, client: Any = None) -> str:
        sha = self._shas.get(name) if client is None else None
        if sha is None:
            sha = (client or self.r).script_load(getattr(scripts, name))
            self._shas[name] = sha
        return sha

    def run(self, name: str, keys: list[str], args: list[Any], pool: str | None = None) -> Any:
        """Run script ``name`` (``scripts.NAME``) by its SHA, loading it when the
        server does not know it (first use, restart, failover)."""
        try:
            try:
                return self.r.evalsha(self._sha(name), len(keys), *keys, *args)
            except rx.NoScriptError:
                self._shas.pop(name, None)
                return self.r.evalsha(self._sha(name), len(keys), *keys, *args)
        except rx.RedisError as exc:
            raise map_error(exc, self.where, pool) from None

    def call(self, fn: Callable[[Any], Any], pool: str | None = None) -> Any:
        """Run ``fn(redis_client)``, mapping redis-py errors to Plasmite kinds."""
        try:
            return fn(self.r)
        except rx.RedisError as exc:
            raise map_error(exc, self.where, pool) from None

    def node_client(self, key: str):
        """A client of the node holding ``key`` (the server itself unless Cluster)."""
        r = self.r
        if not self.cluster:
            return r
        node = r.get_node_from_key(key)
        if node.redis_connection is None:
            r.nodes_manager.initialize()
            node = r.get_node_from_key(key)
        return node.redis_connection

    def run_durably(self, name: str, keys: list[str], args: list[Any], pool: str) -> Any:
        """Run script ``name``, then ``WAIT`` for replicas on the same connection.

        WAIT covers the writes of its own connection, hence one pipeline on the
        node holding the keys. The replica count is ``?replicas=N`` or else all
        replicas the primary has connected now; with none, durability is the
        server's persistence (AOF with ``appendfsync always``: see docs/scale-out.md).
        """
        try:
            node = self.node_client(keys[0])
            want = self.loc.replicas
            if want is None:
                want = int(node.info("replication").get("connected_slaves", 0))
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(self._sha(name, node), len(keys), *keys, *args)
            if want:
                pipe.wait(want, self.loc.wait_timeout_ms)
            out = pipe.execute()
        except rx.RedisError as exc:
            raise map_error(exc, self.where, pool) from None
        if want and out[-1] < want:
            raise IoError(
                f"write to pool {pool} reached {out[-1]} of {want} replicas within {self.loc.wait_timeout_ms} ms",
                pool,
                hint="the message is stored on the primary but not yet replicated; check the replicas, "
                "or raise ?wait_timeout_ms= / lower ?replicas= in the ref",
            )
        return out[0]

    def close(self) -> None:
        r, self._r = self._r, None
        self._shas.clear()
        if r is not None:
            try:
                r.close()
            except Exception:
                pass
