"""The local Python API: ``Client`` (pool lifecycle) and ``Pool`` (messages).

Signatures follow upstream's Python binding (``Client(pool_dir)``,
``create_pool``, ``open_pool``, ``append``, ``append_json``, ``get``,
``get_json``, ``open_stream``, ``tail``, ``replay``), so programs written for
it run unchanged; ``append_many``, ``atail`` and pool admin calls are additions.
"""

from __future__ import annotations

import time as _time
from pathlib import Path
from operator import itemgetter
from typing import Any, AsyncIterator, Iterable, Iterator, NamedTuple

import msgspec

from . import format as F
from .appending import (encode_batch, encode_message, encode_tagged, encode_values, json_payload, split_items, tags_blob)
from .codecs import JSON, encode_json
from .durability import Durability
from .jsonsplit import split_objects
from .envelope import Message, format_rfc3339, stored_envelope
from . import leftovers, locks
from .errors import CorruptError, NotFoundError, PlasmiteError, UsageError
from .pacing import check_speed, paced
from .pool import PoolFile, delete_pool_file
from .protocols import Capability
from .refs import default_pool_dir, pool_files, pool_name_of, resolve_pool_ref
from .stream import Stream

DEFAULT_POOL_SIZE_BYTES = 1024 * 1024
DEFAULT_POOL_SIZE = DEFAULT_POOL_SIZE_BYTES

_EMPTY = b""
_payload_of = itemgetter(1)  # of a (tags_blob, payload) item


class PoolInfo(NamedTuple):
    name: str
    path: str
    file_size: int
    index_offset: int
    index_capacity: int
    index_size_bytes: int
    ring_offset: int
    ring_size: int
    oldest_seq: int | None
    newest_seq: int | None
    message_count: int
    codec: str
    format_version: int
    used_bytes: int
    free_bytes: int
    oldest_time_ns: int | None
    newest_time_ns: int | None

    @property
    def bounds(self) -> dict[str, int | None]:
        return {"oldest": self.oldest_seq, "newest": self.newest_seq}

    def to_dict(self) -> dict[str, Any]:
        """Upstream's pool-info JSON shape, plus ``codec`` and ``format_version``."""
        bounds = {}
        if self.oldest_seq is not None:
            bounds = {"oldest": self.oldest_seq, "newest": self.newest_seq}
        now = _time.time_ns()

        def age(t):
            return None if t is None else max(0, (now - t) // 1_000_000)

        return {
            "name": self.name,
            "path": self.path,
            "file_size": self.file_size,
            "index_offset": self.index_offset,
            "index_capacity": self.index_capacity,
            "index_size_bytes": self.index_size_bytes,
            "ring_offset": self.ring_offset,
            "ring_size": self.ring_size,
            "bounds": bounds,
            "metrics": {
                "message_count": self.message_count,
                "seq_span": 0 if self.oldest_seq is None or self.newest_seq is None
                else self.newest_seq - self.oldest_seq + 1,
                "utilization": {
                    "used_bytes": self.used_bytes,
                    "free_bytes": self.free_bytes,
                    "used_percent": round(100.0 * self.used_bytes / self.ring_size, 2) if self.ring_size else 0.0,
                },
                "age": {
                    "oldest_time": None if self.oldest_time_ns is None else format_rfc3339(self.oldest_time_ns),
                    "newest_time": None if self.newest_time_ns is None else format_rfc3339(self.newest_time_ns),
                    "oldest_age_ms": age(self.oldest_time_ns),
                    "newest_age_ms": age(self.newest_time_ns),
                },
            },
            "codec": self.codec,
            "format_version": self.format_version,
        }


def _info_of(pf: PoolFile) -> PoolInfo:
    st = pf.read_state()
    geo = pf.header.geometry
    count, oldest, newest = F.retained(st, pf.lost())  # net of what repairs dropped
    empty = count == 0
    oldest_t = None if empty else pf.frame_time(oldest, st)
    used = st.head - st.tail
    return PoolInfo(
        name=pool_name_of(pf.path),
        path=str(pf.path.resolve()),
        file_size=geo.file_size,
        index_offset=geo.index_offset,
        index_capacity=geo.index_capacity,
        index_size_bytes=geo.index_capacity * 4,
        ring_offset=geo.ring_offset,
        ring_size=geo.ring_size,
        oldest_seq=None if empty else oldest,
        newest_seq=None if empty else newest,
        message_count=count,
        codec=pf.codec_name,
        format_version=pf.header.version,
        used_bytes=used,
        free_bytes=geo.ring_size - used,
        oldest_time_ns=oldest_t,
        newest_time_ns=None if empty else st.newest_time,
    )


class Pool:
    """An open pool. Thread-safe for appends; streams are per-thread objects."""

    capabilities = frozenset({
        Capability.ENCODED_APPEND, Capability.SINCE_TIME, Capability.WHERE,
        Capability.LOCAL_READS, Capability.JSON_BATCHES,
    })

    def __init__(self, pf: PoolFile) -> None:
        self._pf: PoolFile | None = pf
        if pf.codec_name == "json":
            codec = JSON
        else:
            from . import plugins

            codec = plugins.codec(pf.codec_name)
        self._codec_obj = codec
        self._encode = msgspec.json.Encoder().encode if codec is JSON else codec.encode
        # extend encodes a batch in one call and splits it (compiled path, JSON pools).
        self._split = split_objects if codec is JSON else None
        # Messages decode JSON payloads directly (None = the fast JSON path).
        self._payload_codec = None if codec.is_json else codec
        self._message = Message.bound(pf)  # messages read from this pool name it in Corrupt errors
        self.path = pf.path
        self.name = pool_name_of(pf.path)
        self.codec = pf.codec_name

    @property
    def lock_timeout(self) -> float:
        """Seconds an append waits for the pool's write lock before BusyError."""
        return self._file().lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, value: float) -> None:
        self._file().lock_timeout = locks.parse_timeout(value)

    def _file(self) -> PoolFile:
        pf = self._pf
        if pf is None or pf.closed:
            raise UsageError("pool is closed", hint="open it again with Client.open_pool")
        return pf

    # --------------------------------------------------------------- append
    def append(self, value: Any, tags: Iterable[str] | None = None, durability: Durability = Durability.FAST) -> Message:
        """Append one JSON-compatible value; returns the committed message."""
        if tags or type(value) is not dict:
            tags_raw, payload = encode_message(value, tags, self._encode)
        else:  # inlined encode_message (the hot path): an untagged dict
            tags_raw = _EMPTY
            try:
                payload = self._encode(value)
            except Exception:
                tags_raw, payload = encode_message(value, tags, self._encode)  # raises its Usage error
        pf = self._pf
        if pf is None:
            pf = self._file()  # raises: the pool is closed
        seq, t = pf.append(tags_raw, payload, durability)  # type: ignore[arg-type]  # IntEnum as the flush flag
        return Message(seq, t, tags_raw, payload, self._payload_codec, value)

    def append_json(self, payload: bytes | str, tags: Iterable[str] = (), durability: Durability = Durability.FAST) -> bytes:
        """Append a JSON object given as UTF-8 bytes (validated); returns the
        committed JSON envelope. A ``str`` is a TypeError, as upstream's binding."""
        data = json_payload(payload)
        if self._codec_obj is not JSON:
            data = self._codec_obj.from_json(data)
        tags_raw = tags_blob(tags)
        seq, t = self._file().append(tags_raw, data, bool(durability))
        if self._payload_codec is None:
            return stored_envelope(seq, t, tags_raw, data)
        return Message(seq, t, tags_raw, data, self._payload_codec).raw

    def append_many(
        self,
        values: Iterable[Any],
        tags: Iterable[str] | None = None,
        durability: Durability = Durability.FAST,
    ) -> list[Message]:
        """Append many values in order; all share ``tags`` (per-message tags:
        ``append_many_tagged``).

        A batch whose frames (32 bytes + tags + payload, rounded up to 8 each)
        total at most half the pool's ring is written under one lock: its seqs
        are contiguous, no other writer's message lands between them. A larger
        batch is split into such chunks, written in order; other writers'
        messages may land between chunks. Values are encoded before anything
        is written, so a bad value stores nothing. When a later chunk fails,
        the PlasmiteError raised carries ``committed``: the Messages already
        stored (``[]`` when none were). Encoded as ``extend`` encodes.
        """
        codec = self._codec_obj
        try:
            items = None
            if self._split is not None:  # as in extend: one encoder call, split
                values = vals = values if type(values) is list else list(values)
                items = split_items(vals, tags, self._encode, self._split)
            if items is None:
                vals, items = encode_batch(values, tags, encode_json if codec is JSON else codec.encode)
        except PlasmiteError as exc:
            exc.committed = []
            raise
        return self._commit_many(items, vals, durability)

    def extend(self, values: Iterable[Any], tags: Iterable[str] | None = None,
               durability: Durability = Durability.FAST) -> range | list[int]:
        """Append many values like ``append_many`` but return only their seqs.

        The bulk path: no ``Message`` is built per value. Chunked like
        ``append_many``: a batch within half the ring has contiguous seqs,
        returned as a ``range``; a larger one whose chunks other writers'
        messages split returns its seqs as a list. On failure the error's
        ``committed`` lists the seqs already stored (``[]`` when none were).
        On a JSON pool with the compiled speedups the batch is encoded in one
        encoder call and split (``jsonsplit``); the frames are the same.
        """
        try:
            vals = values if type(values) is list else list(values)
            items = split_items(vals, tags, self._encode, self._split) if self._split is not None else None
            if items is None:
                items = encode_values(vals, tags, self._encode,
                                      encode_json if self._codec_obj is JSON else self._codec_obj.encode)
        except PlasmiteError as exc:
            exc.committed = []
            raise
        if not vals:
            return range(0)
        try:
            return self._file().append_seqs(items, bool(durability))
        except PlasmiteError as exc:
            exc.committed = [seq for seq, _ in getattr(exc, "committed", None) or []]
            raise

    def append_many_tagged(self, items: Iterable[tuple[Any, Iterable[str] | None]], durability: Durability = Durability.FAST) -> list[Message]:
        """Append ``(value, tags)`` pairs in order, chunked and reported on
        failure like ``append_many``."""
        codec = self._codec_obj
        try:
            vals, encoded = encode_tagged(items, encode_json if codec is JSON else codec.encode)
        except PlasmiteError as exc:
            exc.committed = []
            raise
        return self._commit_many(encoded, vals, durability)

    def append_encoded(self, items: list[tuple[bytes, bytes]], durability: Durability = Durability.FAST) -> list[tuple[int, int]]:
        """Low-level batch: ``(tags_blob, payload)`` already in the pool's codec.

        For ingest paths (CLI feed) that validated JSON (objects only, see
        ``require_object``) themselves; returns
        ``[(seq, time_ns)]``. ``tags_blob`` is b"" or a JSON array of strings.
        Chunked like ``append_many``; on failure the error's ``committed``
        holds the ``(seq, time_ns)`` receipts already stored. An empty
        payload is refused (Usage) before anything is stored: no codec
        encodes a message as nothing, and such a frame is not one a reader
        accepts.
        """
        if b"" in map(_payload_of, items):
            raise UsageError("a payload is empty", hint="every message's payload is one encoded object, e.g. b'{}'")
        return self._file().append_batch(items, bool(durability))

    def _commit_many(self, items, vals, durability) -> list[Message]:
        if not items:
            return []
        pc = self._payload_codec
        try:
            receipts = self._file().append_batch(items, bool(durability))
        except PlasmiteError as exc:
            done = getattr(exc, "committed", None) or []
            exc.committed = [Message(seq, t, tr, pl, pc, v) for (seq, t), (tr, pl), v in zip(done, items, vals)]
            raise
        return [Message(seq, t, tags_raw, payload, pc, v) for (seq, t), (tags_raw, payload), v in zip(receipts, items, vals)]

    # ----------------------------------------------------------------- read
    def get(self, seq: int) -> Message:
        """The message with ``seq``; NotFound (with ``seq``) when not retained."""
        if seq.__class__ is not int or seq < 0:
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise UsageError(f"seq must be a non-negative integer, got {seq!r}")
        pf = self._pf
        if pf is None:
            pf = self._file()  # raises: the pool is closed
        fr = pf.get_frame(seq)
        if fr is not None:
            return self._message(fr[0], fr[1], fr[2], fr[3], self._payload_codec)
        raise NotFoundError(
            f"message not found: seq {seq} is not in the pool", seq=seq,
            hint="`pls pool info` shows the retained range (bounds)",
        )

    def get_json(self, seq: int) -> bytes:
        return self.get(seq).raw

    def info(self) -> PoolInfo:
        return _info_of(self._file())

    def bounds(self) -> tuple[int | None, int | None]:
        pf = self._file()
        count, oldest, newest = F.retained(pf.read_state(), pf.lost())
        return (None, None) if count == 0 else (oldest, newest)

    # ---------------------------------------------------------------- lite3
    def append_lite3(self, payload: bytes, durability: Durability = Durability.FAST) -> int:
        """Append a Lite3 message document ``{"meta":{"tags"},"data"}``; returns its seq."""
        from .lite3_frames import message_from_lite3

        data, tags = message_from_lite3(payload)
        return self.append(data, tags, durability).seq

    def get_lite3(self, seq: int):
        """The message as a ``Lite3Frame`` (payload = Lite3 of meta + data)."""
        from .lite3_frames import frame_of

        return frame_of(self.get(seq))

    def open_lite3_stream(
        self,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        error_on_gap: bool = False,
        **options: Any,
    ):
        """Like ``open_stream`` but yields ``Lite3Frame`` objects."""
        from .lite3_frames import Lite3Stream

        return Lite3Stream(Stream(self, since_seq, max_messages, timeout_ms, error_on_gap, **options))

    # -------------------------------------------------------------- streams
    def open_stream(
        self,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        error_on_gap: bool = False,
        **options: Any,
    ) -> Stream:
        """A cursor; see ``Stream``. Keywords: last, since_time_ns, tags, where, on_gap."""
        return Stream(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail(
        self,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        tags: Iterable[str] | None = None,
        error_on_gap: bool = False,
        **options: Any,
    ) -> Iterator[Message]:
        """Messages in seq order, waiting for new ones until max/timeout."""
        with Stream(self, since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as stream:
            yield from stream.messages()

    async def atail(
        self,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        tags: Iterable[str] | None = None,
        error_on_gap: bool = False,
        **options: Any,
    ) -> AsyncIterator[Message]:
        """``async for`` over messages; many async tails share one waiter thread."""
        with Stream(self, since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as stream:
            async for m in stream:
                yield m

    def __iter__(self) -> Iterator[Message]:
        """Iterate the retained messages (no waiting)."""
        stream = Stream(self, timeout_ms=0)
        while True:
            batch = stream.poll()
            if not batch:
                return
            yield from batch

    def replay(
        self,
        speed: float = 1.0,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        tags: Iterable[str] | None = None,
        **options: Any,
    ) -> Iterator[Message]:
        """Yield messages with their original spacing divided by ``speed``
        (``speed=0``: as fast as possible); see ``pacing``."""
        check_speed(speed)
        return paced(self.tail(since_seq, max_messages, timeout_ms, tags, **options), speed)

    # ------------------------------------------------------------ try-lock
    def try_lock(self) -> bool:
        """Take the pool's write lock (the file's ``flock``) now if it is free; never waits.

        For callers that must not block (an event loop): the lock belongs to
        this handle's open file, so this handle's next append goes through at
        once while other processes wait. Release it with :meth:`unlock` (an
        append releases it too).
        """
        try:
            locks.flock(self._file().fd, locks.LOCK_EX_NB)
            return True
        except BlockingIOError:
            return False

    def unlock(self) -> None:
        """Release the write lock taken by :meth:`try_lock` (harmless when not held)."""
        locks.flock(self._file().fd, locks.LOCK_UN)

    # ------------------------------------------------------------- lifetime
    def close(self) -> None:
        pf, self._pf = self._pf, None
        if pf is not None:
            pf.close()

    def __enter__(self) -> "Pool":
        self._file()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"Pool({str(self.path)!r})"


def _check_index_capacity(size_bytes: int, index_capacity: int) -> None:
    """Refuse an index with more slots than the ring left beside it can ever
    hold messages (as upstream refuses an index that does not fit): the
    default geometry, one slot per smallest frame, is the most that is useful."""
    from .format import plan_geometry

    try:
        most = plan_geometry(size_bytes).index_capacity
    except ValueError:
        return  # a size out of range: PoolFile.create reports it
    if index_capacity > most:
        raise UsageError(
            f"index capacity {index_capacity} leaves too little ring: a pool of {size_bytes} bytes "
            f"holds at most {most} messages",
            hint=f"choose an index capacity of at most {most} (the default indexes every message), "
                 "or a larger pool size",
        )


def _open_file(path: Path, ref: str | Path | None = None, lock_timeout: float | None = None) -> PoolFile:
    """``PoolFile.open``, telling an upstream Plasmite pool from a corrupt one."""
    try:
        return PoolFile.open(path, lock_timeout)
    except CorruptError:
        from .upstream import not_ours_error, upstream_version

        version = upstream_version(path)
        if version is None:
            raise
        raise not_ours_error(path, version, None if ref is None else str(ref)) from None


class Client:
    """Pools in one local directory (default ``~/.plasmite/pools``).

    ``lock_timeout`` (seconds; default ``$PLASMITE_LOCK_TIMEOUT``, else 5) bounds
    every wait for a lock: an append, create, delete or repair that cannot get
    its lock in time raises ``BusyError`` naming the holder's PID when known.
    """

    def __init__(self, pool_dir: str | Path | None = None, *, lock_timeout: float | str | None = None) -> None:
        if pool_dir is not None and not str(pool_dir):
            raise UsageError("pool_dir is empty", hint="omit it for the default directory")
        self.pool_dir = Path(pool_dir).expanduser() if pool_dir is not None else default_pool_dir()
        self.lock_timeout = locks.resolve_timeout(lock_timeout)
        self._closed = False

    def _path(self, ref: str | Path) -> Path:
        if self._closed:
            raise UsageError("client is closed")
        return resolve_pool_ref(ref, self.pool_dir)

    def create_pool(
        self,
        pool_ref: str | Path,
        size_bytes: int = DEFAULT_POOL_SIZE_BYTES,
        *,
        index_capacity: int | None = None,
        codec: str = "json",
    ) -> Pool:
        if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or size_bytes <= 0:
            raise UsageError(f"size_bytes must be a positive integer, got {size_bytes!r}", hint="e.g. 8 * 1024 * 1024")
        if index_capacity:
            _check_index_capacity(size_bytes, index_capacity)
        if codec != "json":
            from . import plugins

            plugins.codec(codec)  # fail before creating the file
        return Pool(PoolFile.create(self._path(pool_ref), size_bytes, index_capacity, codec, self.lock_timeout))

    def open_pool(self, pool_ref: str | Path) -> Pool:
        return Pool(_open_file(self._path(pool_ref), pool_ref, self.lock_timeout))

    def pool(self, pool_ref: str | Path, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, **options: Any) -> Pool:
        """Open the pool, creating it when missing (safe against a racing creator)."""
        try:
            return self.open_pool(pool_ref)
        except NotFoundError:
            pass
        try:
            return self.create_pool(pool_ref, size_bytes, **options)
        except PlasmiteError as exc:
            if exc.kind.label == "AlreadyExists":
                return self.open_pool(pool_ref)
            raise

    def pool_info(self, pool_ref: str | Path) -> PoolInfo:
        pf = _open_file(self._path(pool_ref), pool_ref)
        try:
            return _info_of(pf)
        finally:
            pf.close()

    def list_pools(self) -> list[PoolInfo]:
        """Pools in ``pool_dir`` sorted by name; unreadable files are skipped.

        Also removes temp files that killed creators left (``sweep_leftovers``)."""
        if self._closed:
            raise UsageError("client is closed")
        self.sweep_leftovers()
        out = []
        for _name, p in pool_files(self.pool_dir):
            try:
                pf = _open_file(p)
            except PlasmiteError:
                continue
            try:
                out.append(_info_of(pf))
            finally:
                pf.close()
        return out

    def delete_pool(self, pool_ref: str | Path) -> None:
        """Delete a pool; handles still open on it refuse appends (NotFound)."""
        delete_pool_file(self._path(pool_ref), self.lock_timeout)

    def sweep_leftovers(self) -> list[str]:
        """Remove temp files of dead pool creators in ``pool_dir``; returns their
        paths. Best effort: skipped while another process holds the directory's
        admin lock."""
        if not self.pool_dir.is_dir():
            return []
        try:
            with locks.admin_lock(self.pool_dir, 0) as held:
                return [str(item.path) for item in leftovers.sweep(self.pool_dir)] if held else []
        except PlasmiteError:
            return []

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
