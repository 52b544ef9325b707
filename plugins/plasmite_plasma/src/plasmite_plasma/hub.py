"""The fan-out: follow the pools, hand each event to the subscribers of its type.

One asyncio task per followed pool reads new messages and dispatches them to
per-subscriber queues, indexed by subscription key so an event costs a few
dict look-ups whatever the number of subscribers. A subscriber whose queue
overflows never stalls the others: its queue is replaced by one ``LAG``
marker, and its writer catches up by reading the pool itself (``catch_up``)
before taking live events again, so it loses nothing either.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Iterable

from plasmite_core.protocols import Capability, PoolHandle

from .events import BadEvent, Event, from_message, matches, type_keys
from .metrics import Metrics

QUEUE_SIZE = 4096
REPLAY_CHUNK = 512
LAG = Event("", "null")  # queue marker: "you fell behind, read the pool"


class Subscriber:
    __slots__ = ("transport", "types", "queue", "closed", "reason", "lagging", "position")

    def __init__(self, transport: str, types: Iterable[str], position: tuple[int, ...]) -> None:
        self.transport = transport
        self.types = frozenset(types)
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.closed = False
        self.reason = ""
        self.lagging = False
        self.position = position  # of the last event handed to the writer (its resume point)

    def deliver(self, event: Event) -> None:
        if self.closed or self.lagging:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(LAG)

    def close(self, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.reason = reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def get(self) -> Event | None:
        """The next event (``LAG`` after an overflow), or None once closed."""
        ev = await self.queue.get()
        if ev is not None and ev is not LAG:
            self.position = ev.position
        return ev


class Hub:
    def __init__(self, pools: list[tuple[str, PoolHandle]], type_from: str, metrics: Metrics,
                 log: logging.Logger) -> None:
        self.refs = [ref for ref, _ in pools]
        self.pools = [pool for _, pool in pools]
        self._inodes: list[int | None] = [None] * len(pools)
        self.type_from = type_from
        self.metrics = metrics
        self.log = log
        self.position: list[int] = [0] * len(pools)
        self.healthy: list[bool] = [False] * len(pools)
        self._by_key: dict[str, set[Subscriber]] = {}
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------ following
    async def start(self) -> None:
        for i, pool in enumerate(self.pools):
            last = (await asyncio.to_thread(pool.bounds))[1]
            self.position[i] = last or 0
            if is_local(pool):
                self._inodes[i] = os.stat(pool.path).st_ino
            self.healthy[i] = True
            self._tasks.append(asyncio.create_task(self._follow(i), name=f"plasma-follow-{self.refs[i]}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for subs in list(self._by_key.values()):
            for s in list(subs):
                s.close("the gateway is shutting down")

    async def _follow(self, i: int) -> None:
        pool = self.pools[i]
        while True:
            try:
                async for m in pool.atail(since_seq=self.position[i] + 1):
                    self.healthy[i] = True
                    self.dispatch(i, m.seq, m.data, m.tags)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an unreadable pool: report, retry
                if self.healthy[i]:
                    self.log.error("pool unreadable", extra={"fields": {"pool": self.refs[i], "error": str(exc)}})
                self.healthy[i] = False
                await asyncio.sleep(1.0)

    def dispatch(self, i: int, seq: int, data: Any, tags: list[str] | None) -> None:
        self.position[i] = seq
        try:
            etype, data_json = from_message(data, tags, self.type_from)
        except BadEvent as exc:
            self.metrics.skipped.labels(source="pool").inc()
            self.log.info("skipped a message that is not a Plasma event",
                          extra={"fields": {"pool": self.refs[i], "seq": seq, "error": str(exc)}})
            return
        event = Event(etype, data_json, tuple(self.position))
        self.metrics.events.inc()
        targets: set[Subscriber] = set()
        for key in type_keys(etype):
            subs = self._by_key.get(key)
            if subs:
                targets |= subs
        sent = {"sse": 0, "grpc": 0}
        for s in targets:
            s.deliver(event)
            sent[s.transport] = sent.get(s.transport, 0) + 1
        for transport, n in sent.items():
            if n:
                self.metrics.sent.labels(transport=transport).inc(n)

    # ---------------------------------------------------------- subscribers
    def subscribe(self, transport: str, types: Iterable[str]) -> Subscriber:
        sub = Subscriber(transport, types, tuple(self.position))
        self._index(sub)
        self.metrics.connect(transport, +1)
        return sub

    def resubscribe(self, sub: Subscriber, types: Iterable[str]) -> None:
        self._unindex(sub)
        sub.types = frozenset(types)
        self._index(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        self._unindex(sub)
        sub.close()
        self.metrics.connect(sub.transport, -1)

    def _index(self, sub: Subscriber) -> None:
        for t in sub.types:
            self._by_key.setdefault(t, set()).add(sub)

    def _unindex(self, sub: Subscriber) -> None:
        for t in sub.types:
            subs = self._by_key.get(t)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_key[t]

    # --------------------------------------------------------------- replay
    def catch_up(self, sub: Subscriber):
        """After ``LAG``: the events ``sub`` missed, read from the pool. Live
        delivery resumes at once for events after the current position."""
        since, upto = sub.position, tuple(self.position)
        self.log.debug("a subscriber fell behind; catching up from the pool", extra={"fields": {
            "transport": sub.transport, "from": list(since), "to": list(upto)}})
        sub.lagging = False
        sub.position = upto
        return self.replay(sub, since, upto)

    async def replay(self, sub: Subscriber, since: tuple[int, ...], upto: tuple[int, ...]):
        """Events after ``since`` up to ``upto`` (both per pool) that match
        ``sub``, with the position to use as each one's id. Live events after
        ``upto`` are already queued for ``sub``, so nothing is lost or repeated."""
        pos = list(since)
        for i, pool in enumerate(self.pools):
            start = since[i] + 1
            while start <= upto[i]:
                batch = await asyncio.to_thread(_read, pool, start, min(REPLAY_CHUNK, upto[i] - start + 1))
                if not batch:
                    break
                for seq, data, tags in batch:
                    if seq > upto[i]:
                        break
                    pos[i] = seq
                    try:
                        etype, data_json = from_message(data, tags, self.type_from)
                    except BadEvent:
                        continue
                    if matches(etype, sub.types):
                        yield Event(etype, data_json, tuple(pos))
                start = batch[-1][0] + 1
            pos[i] = max(pos[i], upto[i])

    # --------------------------------------------------------------- health
    async def check(self) -> list[str]:
        """Problems with the pools, empty when all are readable now."""
        problems = []
        for i, pool in enumerate(self.pools):
            try:
                await asyncio.wait_for(asyncio.to_thread(_probe, pool, self._inodes[i]), 5.0)
            except Exception as exc:
                problems.append(f"pool {self.refs[i]}: {exc or type(exc).__name__}")
                continue
            if not self.healthy[i]:
                problems.append(f"pool {self.refs[i]}: the follower is retrying")
        return problems


def is_local(pool: PoolHandle) -> bool:
    """A pool file on this machine: reads and appends never wait on a network."""
    return Capability.LOCAL_READS in pool.capabilities


def _probe(pool: PoolHandle, inode: int | None) -> None:
    """Read the pool's bounds; for a local pool also check that its file is
    still the one the gateway opened (a deleted or replaced file is unhealthy)."""
    pool.bounds()
    if inode is not None and os.stat(pool.path).st_ino != inode:
        raise OSError(f"{pool.path} was replaced since the gateway opened it")


def _read(pool: PoolHandle, start: int, n: int) -> list[tuple[int, Any, list[str]]]:
    # A local read returns what is there at once; a remote tail needs a moment
    # for its request even though the n messages already exist.
    wait = 0 if is_local(pool) else 2000
    return [(m.seq, m.data, m.tags) for m in pool.tail(since_seq=start, max_messages=n, timeout_ms=wait)]
