"""``RedisClient`` and ``RedisPool``: the local Client/Pool surface on Redis.

Seq, time, capacity and trimming are decided inside Redis by the scripts in
``scripts.py``; this module encodes payloads, builds ``Message`` objects from
stream entries and maps every failure to a Plasmite error kind.
"""

from __future__ import annotations

import time as _time
from typing import Any, AsyncIterator, Iterable, Iterator

import msgspec

from plasmite import (DEFAULT_POOL_SIZE_BYTES, Durability, Message, NotFoundError, PlasmiteError, PoolInfo,
                      UsageError, encode_batch, encode_message, encode_tagged, json_payload, tags_blob)
from plasmite import validate_pool_name

from .location import Location, parse
from .scripts import ENTRY_OVERHEAD
from .server import Server
from .stream import RedisStream, entry_message

LAYOUT_VERSION = 1
# Appends of one call go to Redis in scripts of at most this many messages, so
# one script never holds the server for long.
_CHUNK = 1024


def keys_of(name: str) -> tuple[str, str]:
    """The pool's meta hash and stream; ``{name}`` puts both in one Cluster slot."""
    return f"plasmite:{{{name}}}:meta", f"plasmite:{{{name}}}:log"


_META_MATCH = "plasmite:{*}:meta"


class RedisClient:
    """Pools on one Redis deployment: ``RedisClient("redis://host:6379")``.

    A pool name in the URL's path (``redis://host:6379/chat``) becomes the
    default for calls that omit ``ref``. Options: ``?db=N``; ``?replicas=N`` and
    ``?wait_timeout_ms=T`` for ``Durability.FLUSH``; ``?reconnect_s=S``, how
    long a follower keeps reconnecting before it fails (default 60);
    ``?cluster=0|1`` to skip asking the server whether it is a Cluster.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379", *, tls_ca: str | None = None,
                 tls_skip_verify: bool = False, **options: Any) -> None:
        if options:
            raise UsageError(
                f"redis refs take no {', '.join(sorted(options))} option",
                hint="put credentials in the ref: redis://user:password@host:port/POOL",
            )
        self.location: Location = parse(url)
        if tls_ca or tls_skip_verify:
            if self.location.scheme != "rediss":
                raise UsageError("TLS options apply to rediss:// refs only", hint="use rediss://host:port/POOL")
            if tls_ca:
                self.location.extra["ssl_ca_certs"] = tls_ca
            if tls_skip_verify:
                self.location.extra["ssl_cert_reqs"] = "none"
        self._server = Server(self.location)
        self._closed = False

    @property
    def url(self) -> str:
        """The server's ref without credentials."""
        return self._server.where

    def _name(self, ref: str | None) -> str:
        if self._closed:
            raise UsageError("client is closed")
        if ref is None:
            ref = self.location.pool
            if ref is None:
                raise UsageError("no pool named", hint="pass a pool name, or put it in the ref: redis://host:6379/POOL")
        elif "://" in ref:
            loc = parse(ref)
            if (loc.host, loc.port, loc.db) != (self.location.host, self.location.port, self.location.db) or not loc.pool:
                raise UsageError(f"{loc.safe} is not a pool on {self.url}", hint="pass a pool name")
            ref = loc.pool
        return validate_pool_name(ref)

    def create_pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, *,
                    max_messages: int = 0, codec: str = "json", index_capacity: int | None = None) -> "RedisPool":
        """Create a pool keeping at most ``size_bytes`` (payload + tags + 48 bytes
        per message) and, when ``max_messages`` > 0, at most that many messages.
        There is no ``index_capacity``: a seq is its stream entry's ID."""
        name = self._name(ref)
        if index_capacity is not None:
            raise UsageError("redis pools have no seq index to size: a seq is its stream entry's ID",
                             hint="drop --index-capacity / index_capacity")
        for label, v, lo in (("size_bytes", size_bytes, 1), ("max_messages", max_messages, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise UsageError(f"{label} must be an integer >= {lo}, got {v!r}", hint="e.g. 8 * 1024 * 1024")
        if codec != "json":
            raise UsageError(f"redis pools store JSON; codec {codec!r} is not available there",
                             hint="omit the codec (json), or use a local pool for msgpack/lite3")
        meta, log = keys_of(name)
        self._server.run("CREATE", [meta, log], [size_bytes, max_messages], name)
        return RedisPool(self, name)

    def open_pool(self, ref: str | None = None) -> "RedisPool":
        pool = RedisPool(self, self._name(ref))
        pool._state()  # NotFound now rather than at the first append
        return pool

    def pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, **options: Any) -> "RedisPool":
        """Open the pool, creating it when missing (safe against a racing creator)."""
        try:
            return self.open_pool(ref)
        except NotFoundError:
            pass
        try:
            return self.create_pool(ref, size_bytes, **options)
        except PlasmiteError as exc:
            if exc.kind.label == "AlreadyExists":
                return self.open_pool(ref)
            raise

    def pool_info(self, ref: str | None = None) -> PoolInfo:
        return RedisPool(self, self._name(ref)).info()

    def list_pools(self) -> list[PoolInfo]:
        """Every pool on the server (all primaries of a Cluster), sorted by name."""
        if self._closed:
            raise UsageError("client is closed")
        keys = self._server.call(lambda r: list(r.scan_iter(match=_META_MATCH, count=1000)))
        names = sorted({k.decode()[len("plasmite:{"):-len("}:meta")] for k in keys})
        out = []
        for name in names:
            try:
                out.append(self.pool_info(name))
            except NotFoundError:
                continue  # deleted meanwhile
        return out

    def delete_pool(self, ref: str | None = None) -> None:
        name = self._name(ref)
        meta, log = keys_of(name)
        if not self._server.call(lambda r: r.delete(meta, log), name):
            raise NotFoundError(f"pool not found: {name} on {self.url}", name,
                                hint="nothing to delete; `pls pool list REDIS_URL` shows existing pools")

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def __enter__(self) -> "RedisClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisClient({self.url!r})"


def open_pool_url(url: str, *, create_size: int | None = None) -> "RedisPool":
    """Open ``redis://host:port/POOL`` (creating it with ``create_size`` bytes when given)."""
    client = RedisClient(url)
    if create_size is not None:
        return client.pool(None, create_size)
    return client.open_pool()


class _State:
    __slots__ = ("newest", "last_t", "cap_bytes", "cap_msgs", "used", "codec", "count", "oldest", "oldest_t")

    def __init__(self, raw: list) -> None:
        self.newest = int(raw[0])
        self.last_t = int(raw[1])
        self.cap_bytes = int(raw[2])
        self.cap_msgs = int(raw[3])
        self.used = int(raw[4])
        self.codec = raw[5].decode() if raw[5] else "json"
        self.count = int(raw[6])
        self.oldest = int(raw[7])
        self.oldest_t = int(raw[8]) if raw[8] else None


_STREAM_OPTIONS = frozenset({"last", "since_time_ns", "tags", "where", "on_gap"})


class RedisPool:
    """An open Redis pool; thread-safe (each call borrows a pooled connection)."""

    codec = "json"
    _payload_codec = None  # payloads are JSON text, decoded lazily by Message
    # plasmite_core.protocols.Capability names (plain strings, so that older cores work too)
    capabilities = frozenset({"encoded_append", "since_time", "where"})

    def __init__(self, client: RedisClient, name: str) -> None:
        self._client = client
        self._server = client._server
        self.name = name
        self._keys = list(keys_of(name))
        self.path = client.location.pool_safe(name)
        self._encode = msgspec.json.Encoder().encode
        self._closed = False

    # ----------------------------------------------------------- internals
    def _call(self, fn):
        if self._closed:
            raise UsageError("pool is closed", hint="open it again with RedisClient.open_pool")
        return self._server.call(fn, self.name)

    def _state(self) -> _State:
        if self._closed:
            raise UsageError("pool is closed", hint="open it again with RedisClient.open_pool")
        return _State(self._server.run("STATE", self._keys, [], self.name))

    def _append_raw(self, items: list[tuple[bytes, bytes]], durability) -> list[tuple[int, int]]:
        """Store ``(tags_blob, payload)`` pairs; ``[(seq, time_ns)]`` in order."""
        if self._closed:
            raise UsageError("pool is closed", hint="open it again with RedisClient.open_pool")
        out: list[tuple[int, int]] = []
        s = self._server
        for i in range(0, len(items), _CHUNK):
            args: list[Any] = [ENTRY_OVERHEAD]
            for tags_raw, payload in items[i:i + _CHUNK]:
                args.append(tags_raw)
                args.append(payload)
            if durability:
                res = s.run_durably("APPEND", self._keys, args, self.name)
            else:
                res = s.run("APPEND", self._keys, args, self.name)
            first = int(res[0])
            out.extend((first + j, int(t)) for j, t in enumerate(res[1:]))
        return out

    # --------------------------------------------------------------- append
    def append(self, value: Any, tags: Iterable[str] | None = None, durability: Durability = Durability.FAST) -> Message:
        tags_raw, payload = encode_message(value, tags, self._encode)
        (seq, t), = self._append_raw([(tags_raw, payload)], durability)
        return Message(seq, t, tags_raw, payload, None, value)

    def append_json(self, payload: bytes | str, tags: Iterable[str] = (), durability: Durability = Durability.FAST) -> bytes:
        """Append a JSON object given as UTF-8 bytes; returns the committed envelope."""
        data = json_payload(payload)
        tags_raw = tags_blob(tags)
        (seq, t), = self._append_raw([(tags_raw, data)], durability)
        return Message(seq, t, tags_raw, data, None).raw

    def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None,
                    durability: Durability = Durability.FAST) -> list[Message]:
        """Append many values in as few round trips as possible; all share ``tags``."""
        vals, items = encode_batch(values, tags)
        return self._messages(items, vals, durability)

    def append_many_tagged(self, items: Iterable[tuple[Any, Iterable[str] | None]],
                           durability: Durability = Durability.FAST) -> list[Message]:
        vals, encoded = encode_tagged(items)
        return self._messages(encoded, vals, durability)

    def append_encoded(self, items: list[tuple[bytes, bytes]], durability: Durability = Durability.FAST) -> list[tuple[int, int]]:
        """``(tags_blob, compact JSON object payload)`` pairs, validated by the caller."""
        return self._append_raw(items, durability)

    def _messages(self, items, vals, durability) -> list[Message]:
        if not items:
            return []
        receipts = self._append_raw(items, durability)
        return [Message(seq, t, tr, pl, None, v) for (seq, t), (tr, pl), v in zip(receipts, items, vals)]

    # ----------------------------------------------------------------- read
    def get(self, seq: int) -> Message:
        """The message with ``seq`` (one XRANGE on its ID, never a scan)."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise UsageError(f"seq must be a non-negative integer, got {seq!r}")
        key = self._keys[1]
        found = self._call(lambda r: r.xrange(key, f"{seq}-0", f"{seq}-0")) if seq else []
        if found:
            return entry_message(*found[0])
        self._state()  # NotFound for the pool itself when it is gone
        raise NotFoundError(f"message not found: seq {seq} is not in the pool", seq=seq,
                            hint="`pls pool info` shows the retained range (bounds)")

    def get_json(self, seq: int) -> bytes:
        return self.get(seq).raw

    def bounds(self) -> tuple[int | None, int | None]:
        st = self._state()
        return (None, None) if st.count == 0 else (st.oldest, st.newest)

    def info(self) -> PoolInfo:
        st = self._state()
        empty = st.count == 0
        return PoolInfo(
            name=self.name,
            path=self.path,
            file_size=st.cap_bytes,
            index_offset=0,
            index_capacity=0,
            index_size_bytes=0,
            ring_offset=0,
            ring_size=st.cap_bytes,
            oldest_seq=None if empty else st.oldest,
            newest_seq=None if empty else st.newest,
            message_count=st.count,
            codec=st.codec,
            format_version=LAYOUT_VERSION,
            used_bytes=st.used,
            free_bytes=max(0, st.cap_bytes - st.used),
            oldest_time_ns=None if empty else st.oldest_t,
            newest_time_ns=None if empty else st.last_t,
        )

    # -------------------------------------------------------------- streams
    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> RedisStream:
        """A cursor; keywords as for a local pool: last, since_time_ns, tags, where, on_gap."""
        unknown = set(options) - _STREAM_OPTIONS
        if unknown:
            raise UsageError(f"open_stream does not take {', '.join(sorted(unknown))}",
                             hint=f"keywords: {', '.join(sorted(_STREAM_OPTIONS))}")
        if self._closed:
            raise UsageError("pool is closed", hint="open it again with RedisClient.open_pool")
        return RedisStream(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail(self, since_seq: int | None = None, max_messages: int | None = None, timeout_ms: int | None = None,
             tags: Iterable[str] | None = None, error_on_gap: bool = False, **options: Any) -> Iterator[Message]:
        with self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as stream:
            yield from stream.messages()

    async def atail(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, tags: Iterable[str] | None = None,
                    error_on_gap: bool = False, **options: Any) -> AsyncIterator[Message]:
        """``async for`` over messages; the waiting of all async tails of a
        client shares one thread and one blocked connection."""
        with self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as stream:
            async for m in stream:
                yield m

    def __iter__(self) -> Iterator[Message]:
        """The retained messages (no waiting)."""
        return self.tail(timeout_ms=0)

    def replay(self, speed: float = 1.0, since_seq: int | None = None, max_messages: int | None = None,
               timeout_ms: int | None = None, tags: Iterable[str] | None = None, **options: Any) -> Iterator[Message]:
        if speed < 0:
            raise UsageError("replay speed must be >= 0", hint="use 1 for original timing, 0 for no delay")
        prev = None
        for m in self.tail(since_seq, max_messages, timeout_ms, tags, **options):
            if prev is not None and speed > 0:
                delay = (m.time_ns - prev) / 1e9 / speed
                if delay > 0:
                    _time.sleep(delay)
            prev = m.time_ns
            yield m

    # ------------------------------------------------------------- lifetime
    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "RedisPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisPool({self.path!r})"
