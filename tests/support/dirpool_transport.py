"""A toy third-party transport, ``dirpool://SHELF/POOL``, written only against the contracts.

It imports nothing but the public ``plasmite`` package (the protocols,
``Message``, the error classes, ``hookimpl``), as an outside author would.
Each pool is a directory under ``$DIRPOOL_ROOT/SHELF``: one JSON file per
message, published by an atomic rename under an ``flock``, and a ``head``
file with the newest seq. It keeps ``size_bytes // 256`` messages, deleting
older files, so retention gaps happen as in a real pool. Readers poll.

Load it with ``PLASMITE_PLUGINS=dirpool_transport`` and this folder on
``PYTHONPATH``; the conformance kit and the CLI tests do.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Iterator

from plasmite import (
    AlreadyExistsError,
    Capability,
    IoError,
    Message,
    NotFoundError,
    RetentionGapError,
    UsageError,
    hookimpl,
    paced,
    parse_message,
)

MESSAGE_COST = 256  # bytes of size_bytes per retained message
POLL_S = 0.005


def _bad(message: str, hint: str | None = None) -> UsageError:
    return UsageError(message, hint=hint)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name:
        raise _bad(f"invalid dirpool pool name: {name!r}", "use a plain name such as `chat`")
    return name


def _tags(tags: Iterable[str] | None) -> list[str]:
    if isinstance(tags, str):
        raise _bad("tags must be a list of strings, not one string", "use tags=['a']")
    out = list(tags or ())
    if not all(isinstance(t, str) and t for t in out):
        raise _bad("tags must be non-empty strings")
    return out


def _durability(value: Any) -> None:
    if getattr(value, "value", value) not in (0, 1, "fast", "flush", None):
        raise _bad(f"invalid durability {value!r}", "use 0 (fast) or 1 (flush)")


class DirPoolInfo:
    def __init__(self, name: str, oldest: int | None, newest: int | None, capacity: int) -> None:
        self.name = name
        self.oldest_seq = oldest
        self.newest_seq = newest
        self.message_count = 0 if newest is None or oldest is None else newest - oldest + 1
        self.codec = "json"
        self.capacity = capacity

    def to_dict(self) -> dict[str, Any]:
        bounds = {} if self.newest_seq is None else {"oldest": self.oldest_seq, "newest": self.newest_seq}
        return {"name": self.name, "bounds": bounds, "codec": self.codec,
                "metrics": {"message_count": self.message_count}, "capacity": self.capacity}


class DirPool:
    """The PoolHandle of one pool directory."""

    codec = "json"
    capabilities = frozenset({Capability.LOCAL_READS})

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.name = directory.name
        self.path = str(directory)
        self._closed = False
        try:
            self.capacity = int((directory / "capacity").read_text())
        except FileNotFoundError:
            raise NotFoundError(f"pool not found: {self.name}", hint="create it first") from None

    def _live(self) -> Path:
        if self._closed:
            raise _bad("pool is closed", "open it again")
        return self.dir

    def _file(self, seq: int) -> Path:
        return self.dir / f"{seq:020d}.json"

    # -- writes
    def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None,
                    durability: Any = 0) -> list[Message]:
        d = self._live()
        _durability(durability)
        tag_list = _tags(tags)
        items = []
        for v in values:
            if not isinstance(v, dict):
                raise _bad(f"message data must be a JSON object, got {type(v).__name__}", 'e.g. {"value": 1}')
            try:
                items.append(json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
            except (TypeError, ValueError, RecursionError) as exc:
                raise _bad(f"data is not JSON-serializable: {exc}") from None
        if not items:
            return []
        out = []
        with open(d / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            newest = self._newest()
            for data in items:
                newest += 1
                env = Message.from_parts(newest, time.time_ns(), tag_list, json.loads(data)).raw
                tmp = d / f".tmp-{newest}"
                tmp.write_bytes(env)
                os.rename(tmp, self._file(newest))
                out.append(parse_message(env))
            (d / ".head-tmp").write_text(str(newest))
            os.rename(d / ".head-tmp", d / "head")
            for seq in range(max(1, newest - self.capacity - len(items) + 1), newest - self.capacity + 1):
                self._file(seq).unlink(missing_ok=True)
        return out

    def append(self, value: Any, tags: Iterable[str] | None = None, durability: Any = 0) -> Message:
        return self.append_many([value], tags, durability)[0]

    def append_json(self, payload: bytes, tags: Iterable[str] = (), durability: Any = 0) -> bytes:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        try:
            value = json.loads(bytes(payload))
        except (ValueError, TypeError) as exc:
            raise _bad(f"invalid JSON: {exc}", "pass one JSON value, e.g. b'{}'") from None
        return self.append(value, tags, durability).raw

    # -- reads
    def _newest(self) -> int:
        try:
            return int((self.dir / "head").read_text())
        except FileNotFoundError:
            if not self.dir.is_dir():
                raise NotFoundError(f"pool was deleted: {self.name}") from None
            return 0

    def bounds(self) -> tuple[int | None, int | None]:
        self._live()
        newest = self._newest()
        if newest == 0:
            return None, None
        seq = max(1, newest - self.capacity + 1)
        while seq < newest and not self._file(seq).exists():
            seq += 1
        return seq, newest

    def get_json(self, seq: int) -> bytes:
        self._live()
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise _bad(f"seq must be a non-negative integer, got {seq!r}")
        try:
            return self._file(seq).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"message not found: seq {seq}", seq=seq) from None
        except OSError as exc:
            raise IoError(f"cannot read message {seq}: {exc}") from None

    def get(self, seq: int) -> Message:
        return parse_message(self.get_json(seq))

    def info(self) -> DirPoolInfo:
        oldest, newest = self.bounds()
        return DirPoolInfo(self.name, oldest, newest, self.capacity)

    # -- streams
    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> "DirStream":
        self._live()
        return DirStream(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail(self, since_seq: int | None = None, max_messages: int | None = None, timeout_ms: int | None = None,
             tags: Iterable[str] | None = None, error_on_gap: bool = False, **options: Any) -> Iterator[Message]:
        with self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as s:
            while (m := s.next()) is not None:
                yield m

    async def atail(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, tags: Iterable[str] | None = None, error_on_gap: bool = False,
                    **options: Any) -> AsyncIterator[Message]:
        with self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as s:
            async for m in s:
                yield m

    def replay(self, speed: float = 1.0, since_seq: int | None = None, max_messages: int | None = None,
               timeout_ms: int | None = None, tags: Iterable[str] | None = None,
               **options: Any) -> Iterator[Message]:
        if not isinstance(speed, (int, float)) or speed < 0:
            raise _bad("replay speed must be >= 0")
        return paced(self.tail(since_seq, max_messages, timeout_ms, tags, **options), speed)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "DirPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class DirStream:
    """The StreamHandle: polls the directory for the next seq."""

    def __init__(self, pool: DirPool, since_seq: int | None, max_messages: int | None, timeout_ms: int | None,
                 error_on_gap: bool, *, last: int | None = None, tags: Iterable[str] | None = None,
                 on_gap: Any = None) -> None:
        for label, v in (("since_seq", since_seq), ("max_messages", max_messages), ("timeout_ms", timeout_ms),
                         ("last", last)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise _bad(f"{label} must be a non-negative integer, got {v!r}")
        self.pool = pool
        self.tags = _tags(tags)
        self.on_gap = on_gap
        self.error_on_gap = error_on_gap
        self.max = max_messages
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        self.delivered = 0
        self.done = False
        self.timed_out = False
        oldest, newest = pool.bounds()
        if since_seq is not None:
            self.expected: int | None = since_seq
            self.cursor = since_seq
        elif last is not None:
            self.expected = None
            self.cursor = 1 if newest is None else max(oldest or 1, newest - last + 1)
        else:
            self.expected = None
            self.cursor = oldest or 1

    @property
    def position(self) -> int | None:
        return self.expected

    def _read_now(self) -> Message | None:
        """The next message committed now (gap rules applied), or None."""
        while not self.done:
            try:
                raw = self.pool._file(self.cursor).read_bytes()
            except FileNotFoundError:
                oldest, newest = self.pool.bounds()
                if newest is None or self.cursor > newest:
                    return None
                if oldest is not None and self.cursor < oldest:
                    self.cursor = oldest  # overwritten: resume at the oldest retained
                continue
            m = parse_message(raw)
            self.cursor = m.seq + 1
            exp = self.expected
            if exp is not None and m.seq > exp:
                if self.error_on_gap:
                    self.done = True
                    raise RetentionGapError(f"messages {exp}-{m.seq - 1} are no longer retained", seq=exp)
                if self.on_gap is not None:
                    self.on_gap(exp, m.seq)
            self.expected = m.seq + 1
            if self.tags and not all(t in m.tags for t in self.tags):
                continue
            self.delivered += 1
            if self.max is not None and self.delivered >= self.max:
                self.done = True
            return m
        return None

    def next(self, timeout_ms: int | None = None) -> Message | None:
        call_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            m = self._read_now()
            if m is not None or self.done:
                return m
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                self.done = self.timed_out = True
                return None
            if call_deadline is not None and now >= call_deadline:
                return None
            time.sleep(POLL_S)

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        m = self.next(timeout_ms)
        return None if m is None else m.raw

    def poll(self, limit: int | None = None) -> list[Message]:
        out: list[Message] = []
        while limit is None or len(out) < limit:
            m = self._read_now()
            if m is None:
                break
            out.append(m)
        return out

    def poll_json(self, limit: int = 1024) -> list[bytes]:
        return [m.raw for m in self.poll(limit)]

    def close(self) -> None:
        self.done = True

    def __enter__(self) -> "DirStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            m = await asyncio.to_thread(self.next, 100)
            if m is not None:
                yield m
            elif self.done:
                return


class DirClient:
    """The TransportClient of one shelf directory."""

    def __init__(self, url: str, **options: Any) -> None:
        if options:
            raise _bad(f"dirpool:// takes no {', '.join(sorted(options))}", "dirpool pools are local directories")
        shelf = url.split("://", 1)[1].strip("/")
        root = os.environ.get("DIRPOOL_ROOT")
        if not root or not shelf or "/" in shelf:
            raise _bad(f"invalid dirpool URL {url!r}", "set DIRPOOL_ROOT and use dirpool://SHELF/POOL")
        self.shelf = Path(root) / shelf
        self._closed = False

    def _dir(self, ref: str) -> Path:
        if self._closed:
            raise _bad("client is closed")
        return self.shelf / _check_name(ref)

    def create_pool(self, pool_ref: str, size_bytes: int = 1024 * 1024, *, index_capacity: int | None = None,
                    codec: str = "json") -> DirPool:
        d = self._dir(pool_ref)
        if codec != "json" or index_capacity is not None:
            raise _bad("dirpool pools are json pools without an index", "omit codec and index_capacity")
        if not isinstance(size_bytes, int) or size_bytes < MESSAGE_COST:
            raise _bad(f"size_bytes must be an integer >= {MESSAGE_COST}")
        self.shelf.mkdir(parents=True, exist_ok=True)
        tmp = self.shelf / f".new-{pool_ref}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        (tmp / "capacity").write_text(str(size_bytes // MESSAGE_COST))
        try:
            os.rename(tmp, d)  # atomic; fails when the pool exists
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AlreadyExistsError(f"pool already exists: {pool_ref}") from None
        return DirPool(d)

    def open_pool(self, pool_ref: str) -> DirPool:
        return DirPool(self._dir(pool_ref))

    def pool(self, pool_ref: str, size_bytes: int = 1024 * 1024) -> DirPool:
        try:
            return self.open_pool(pool_ref)
        except NotFoundError:
            try:
                return self.create_pool(pool_ref, size_bytes)
            except AlreadyExistsError:
                return self.open_pool(pool_ref)

    def pool_info(self, pool_ref: str) -> DirPoolInfo:
        with self.open_pool(pool_ref) as p:
            return p.info()

    def list_pools(self) -> list[DirPoolInfo]:
        if self._closed:
            raise _bad("client is closed")
        if not self.shelf.is_dir():
            return []
        return [self.pool_info(d.name) for d in sorted(self.shelf.iterdir()) if not d.name.startswith(".")]

    def delete_pool(self, pool_ref: str) -> None:
        d = self._dir(pool_ref)
        if not (d / "capacity").exists():
            raise NotFoundError(f"pool not found: {pool_ref}")
        shutil.rmtree(d)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "DirClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@hookimpl
def register_transports(register):
    register("dirpool", DirClient)
