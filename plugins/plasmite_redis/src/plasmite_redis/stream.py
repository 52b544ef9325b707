"""Tails over a Redis pool, with the gap rules of a local ``Stream``.

A stream keeps a cursor (the last seq it read) and asks Redis for entries
after it: ``XREAD BLOCK`` when it has nothing to deliver, so a follower
sleeps in Redis and wakes on the append, with no polling loop. Reads are
safe to repeat, so a follower that loses its connection (server restart,
failover) reconnects with backoff for up to ``?reconnect_s=`` seconds and
resumes after its cursor; entries trimmed meanwhile are reported as a
retention gap like any other. If the server came back with fewer messages
than the follower saw (restarted without persistence), the cursor moves back
to the server's newest seq so that new messages are not skipped.

Async tails wait through one ``_Hub`` per client (one per pool on a Cluster):
a thread blocked in a single ``XREAD`` over all the streams they watch, so
many async tails cost one connection and one thread. Their reads run in
worker threads; called on an event loop's thread, the non-waiting ``poll``
and ``next(0)`` return only what is already fetched, so a server draining
a tail between awaits never blocks its loop on Redis.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Iterable

from redis import exceptions as rx

from plasmite import BufferedStream, Message, UsageError

from .errors import is_transient, map_error
from .server import BLOCK_SLICE_MS

_BATCH = 1024


def entry_message(entry_id: bytes, fields: dict) -> Message:
    seq = int(entry_id[: entry_id.index(b"-")])
    return Message(seq, int(fields[b"t"]), fields.get(b"g", b""), fields[b"d"], None)


class RedisStream(BufferedStream):
    """A cursor over one Redis pool; blocking ``next`` waits in ``XREAD BLOCK``."""

    _GAP_LOST = "trimmed"
    _GAP_HINT = "resume from a newer seq, read faster, or create the pool with a larger size"

    def __init__(self, pool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, *, last: int | None = None,
                 since_time_ns: int | None = None, tags: Iterable[str] | None = None,
                 where: Callable[[Message], bool] | None = None,
                 on_gap: Callable[[int, int], Any] | None = None) -> None:
        super().__init__(since_seq, max_messages, timeout_ms, error_on_gap, last=last, tags=tags, where=where,
                         on_gap=on_gap)
        self._pool = pool
        self._server = pool._server
        self._key = pool._keys[1]
        self._down_since: float | None = None
        st = pool._state()
        if since_seq is not None:
            cursor = since_seq - 1
        elif last is not None:
            cursor = max(st.oldest - 1, st.newest - last) if st.count else st.newest
        elif since_time_ns is not None:
            at = self._server.run("SEQ_AT_TIME", pool._keys, [f"{max(0, since_time_ns):019d}"], pool.name)
            cursor = int(at) - 1
        else:
            cursor = st.oldest - 1 if st.count else st.newest
        self._cursor = max(0, cursor)

    # ------------------------------------------------------------- internals
    def _read(self, block_ms: int | None) -> None:
        """One XREAD after the cursor into the buffer (raises redis-py errors)."""
        if self._pool._closed:
            raise UsageError("pool is closed", hint="keep the pool open while its streams are in use")
        key = self._key
        resp = self._server.r.xread({key: f"{self._cursor}-0"}, count=_BATCH, block=block_ms)
        if self._down_since is not None:
            self._recovered()
        if resp:
            self._accept(resp[0][1])

    def _recovered(self) -> None:
        """Back after a lost connection: rewind if the server lost what we saw."""
        self._down_since = None
        st = self._pool._state()
        if st.newest < self._cursor:
            self._cursor = st.newest
            if self._expected is not None:
                self._expected = st.newest + 1

    def _accept(self, entries: list) -> None:
        buf = self._buf
        exp = self._expected
        tags = self._tags
        where = self._where
        last_seq = self._cursor
        for entry_id, fields in entries:
            m = entry_message(entry_id, fields)
            seq = last_seq = m.seq
            if exp is not None:
                if seq < exp:
                    continue
                if seq > exp and self._gap(exp, seq):
                    self._cursor = exp - 1
                    return
            exp = seq + 1
            if tags is not None and not tags(m._tags_raw):
                continue
            if where is not None and not where(m):
                continue
            buf.append(m)
        self._expected = exp
        self._cursor = last_seq

    def _failed(self, exc: BaseException) -> float:
        """A read failed: the pause before retrying, or raise when it is fatal."""
        if not isinstance(exc, rx.RedisError):
            raise exc
        if not is_transient(exc):
            raise map_error(exc, self._server.where, self._pool.name) from None
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            return 0.05
        if now - self._down_since > self._server.loc.reconnect_s:
            err = map_error(exc, self._server.where, self._pool.name)
            err.message += f" (gave up reconnecting after {self._server.loc.reconnect_s:g} s)"
            raise err from None
        return min(1.0, 0.1 + (now - self._down_since) / 4)

    # ---------------------------------------------------------------- public
    def next(self, timeout_ms: int | None = None) -> Message | None:
        """The next message, waiting in Redis for it; None when the stream has
        ended or ``timeout_ms`` passed for this call."""
        if self._done:
            return None
        if self._buf:
            return self._pop()
        if timeout_ms == 0 and _in_event_loop():
            return None  # never block a loop on the network: anext() reads in a thread
        call_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            left = self._left(call_deadline)
            block = None if left == 0 else (BLOCK_SLICE_MS if left is None else max(1, min(BLOCK_SLICE_MS, int(left * 1000))))
            try:
                self._read(block)
            except Exception as exc:  # noqa: BLE001 - sorted by _failed
                pause = self._failed(exc)
                time.sleep(pause if left is None else min(pause, left))
            if self._buf:
                return self._pop()
            if left is not None and self._left(call_deadline) <= 0:
                self._expire()
                return None

    def poll(self, limit: int | None = None) -> list[Message]:
        """Messages available now, without waiting (at most ``limit``); inside
        an event loop, only those an ``anext()`` already fetched."""
        out: list[Message] = []
        in_loop = _in_event_loop()
        while not self._done and (limit is None or len(out) < limit):
            if not self._buf:
                if in_loop:
                    break
                try:
                    self._read(None)
                except Exception as exc:  # noqa: BLE001
                    self._failed(exc)
                    break
                if not self._buf:
                    break
            out.append(self._pop())
        return out

    def poll_json(self, limit: int = 1024) -> list[bytes]:
        """JSON envelopes available now, without waiting."""
        return [m.raw for m in self.poll(limit)]

    # ----------------------------------------------------------------- async
    async def anext(self) -> Message | None:
        """Async next(): reads run in a worker thread, waits on the client's hub."""
        while True:
            if self._done:
                return None
            if self._buf:
                return self._pop()
            try:
                await asyncio.to_thread(self._read, None)
            except Exception as exc:  # noqa: BLE001
                await asyncio.sleep(self._failed(exc))
                continue
            if self._buf:
                return self._pop()
            left = self._wait_left(None)
            if left == 0:
                return None
            await _hub(self._server, self._key).wait(self._key, self._cursor, left)

class _Hub:
    """One thread blocked in one XREAD over every stream async tails wait on.

    A waiter registers (stream key, cursor) and a future; the thread reads
    one entry after the lowest cursor of each key and resolves the futures of
    that key. A new key interrupts the current XREAD (``CLIENT UNBLOCK``) so
    it joins the next one; the thread ends after a while without waiters.
    """

    def __init__(self, server, node) -> None:
        self._server = server
        self._node = node
        self._lock = threading.Lock()
        self._waiters: dict[str, dict] = {}  # key -> {future: (loop, cursor)}
        self._watching: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._conn_id: int | None = None
        self._arrived = threading.Event()  # a waiter registered while the thread was idle

    async def wait(self, key: str, cursor: int, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._waiters.setdefault(key, {})[fut] = (loop, cursor)
            interrupt = key not in self._watching or self._watching[key] > cursor
            self._arrived.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plasmite-redis-hub", daemon=True)
                self._thread.start()
                interrupt = False
        if interrupt:
            await asyncio.to_thread(self._interrupt, key, cursor)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                ws = self._waiters.get(key)
                if ws is not None:
                    ws.pop(fut, None)
                    if not ws:
                        del self._waiters[key]

    def _interrupt(self, key: str, cursor: int) -> None:
        """Make the thread's XREAD include ``key`` from ``cursor``: unblock it,
        retrying while it is between taking its list of keys and blocking."""
        for _ in range(500):
            with self._lock:
                watched = self._watching.get(key)
                conn_id = self._conn_id
            if watched is not None and watched <= cursor:
                return
            if conn_id is not None:
                try:
                    if self._node.client_unblock(conn_id):
                        return
                except rx.RedisError:
                    return  # the thread's own read fails too and wakes everyone
            time.sleep(0.002)

    def _run(self) -> None:
        import redis

        conn = None
        try:
            while True:
                with self._lock:
                    watch = {k: min(c for _, c in ws.values()) for k, ws in self._waiters.items() if ws}
                    self._watching = watch
                    if not watch:
                        self._arrived.clear()
                if not watch:
                    if not self._arrived.wait(30):  # idle: end, unless a waiter came meanwhile
                        with self._lock:
                            if not self._waiters:
                                self._thread = None
                                return
                    continue
                try:
                    if conn is None:
                        conn = redis.Redis(connection_pool=self._node.connection_pool, single_connection_client=True)
                        self._conn_id = conn.client_id()
                    resp = conn.xread({k: f"{c}-0" for k, c in watch.items()}, count=1, block=BLOCK_SLICE_MS)
                    woken = [(k.decode(), int(e[0][0].split(b"-")[0])) for k, e in resp or () if e]
                except rx.RedisError:
                    # Wake everyone: their own reads retry or report the failure.
                    self._conn_id = None
                    if conn is not None:
                        conn.close()
                    conn = None
                    woken = [(k, c + 1) for k, c in watch.items()]
                    time.sleep(0.1)
                for key, first in woken:
                    with self._lock:
                        ready = [(f, lp) for f, (lp, c) in self._waiters.get(key, {}).items() if c < first]
                    for f, lp in ready:
                        lp.call_soon_threadsafe(_resolve, f)
        finally:
            if conn is not None:
                conn.close()


def _in_event_loop() -> bool:
    return asyncio._get_running_loop() is not None


def _resolve(fut) -> None:
    if not fut.done():
        fut.set_result(None)


_hubs_lock = threading.Lock()


def _hub(server, key: str) -> _Hub:
    """The hub of the server (of the key's node and pool on a Cluster)."""
    hubs = server.hubs
    hub_key = key if server.cluster else ""
    hub = hubs.get(hub_key)
    if hub is None:
        with _hubs_lock:
            hub = hubs.get(hub_key)
            if hub is None:
                hub = hubs[hub_key] = _Hub(server, server.node_client(key))
    return hub
