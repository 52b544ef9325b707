"""The eight tools, run against a pool client.

The client is a ``TransportClient`` and its pools ``PoolHandle``s (the
contracts of ``plasmite_core.protocols``), and only their common calls are
used (no optional capability): local directories, ``RemoteClient`` and
other transports serve alike. Every call here is blocking; the dispatcher
runs them off the event loop. Arguments are checked by hand (the schemas are advertised, not
trusted): a bad one is a Usage failure naming the field.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from plasmite_core.errors import NotFoundError, PlasmiteError, UsageError
from plasmite_core.refs import validate_pool_name

from .schemas import (
    DEFAULT_POOL_SIZE_BYTES,
    DEFAULT_READ_COUNT,
    DEFAULT_WAIT_TIMEOUT_MS,
    MAX_READ_COUNT,
    MAX_WAIT_TIMEOUT_MS,
)

if TYPE_CHECKING:
    from plasmite_core.protocols import PoolHandle, TransportClient

_decode = msgspec.json.decode
READ_SAFETY_MS = 10_000  # a read ends at the newest seq; this only bounds a pool that shrinks under it


class ArgumentError(Exception):
    """A tool argument is missing, unknown or of the wrong type (a Usage failure)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class Args:
    """Typed access to one call's arguments; every key must be consumed."""

    def __init__(self, args: dict, allowed: tuple[str, ...]) -> None:
        for key in args:
            if key not in allowed:
                detail = "jq filters are not offered over MCP; filter by tags" if key == "where" else "unknown argument"
                raise ArgumentError(key, detail)
        self._args = args

    def pool(self, key: str = "pool") -> str:
        raw = self.string(key, required=True)
        if "/" in raw or "\\" in raw:
            raise ArgumentError(key, "a pool name, not a path")
        try:
            return validate_pool_name(raw)
        except UsageError as exc:
            raise ArgumentError(key, exc.message) from None

    def string(self, key: str, required: bool = False) -> Any:
        value = self._args.get(key)
        if value is None:
            if required:
                raise ArgumentError(key, f"missing required `{key}` argument")
            return None
        if not isinstance(value, str):
            raise ArgumentError(key, f"`{key}` must be a string")
        return value

    def uint(self, key: str, default: int | None = None, *, required: bool = False,
             low: int = 0, high: int | None = None) -> Any:
        value = self._args.get(key)
        if value is None:
            if required:
                raise ArgumentError(key, f"missing required `{key}` argument")
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArgumentError(key, f"`{key}` must be a non-negative integer")
        if value < low or (high is not None and value > high):
            raise ArgumentError(key, f"`{key}` must be between {low} and {high}" if high is not None
                                else f"`{key}` must be at least {low}")
        return value

    def boolean(self, key: str) -> bool:
        value = self._args.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ArgumentError(key, f"`{key}` must be true or false")
        return value

    def tags(self, key: str = "tags") -> list[str]:
        value = self._args.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ArgumentError(key, f"`{key}` must be an array of strings")
        out = [t.strip() for t in value]
        if not all(out):
            raise ArgumentError(key, f"`{key}` entries must not be empty")
        return out

    def obj(self, key: str) -> dict:
        if key not in self._args:
            raise ArgumentError(key, f"missing required `{key}` argument")
        value = self._args[key]
        if not isinstance(value, dict):
            raise ArgumentError(key, f'`{key}` must be a JSON object; wrap other values, e.g. {{"value": [1, 2]}}')
        return value


def _missing_pool(err: PlasmiteError, pool: str, can_create: bool) -> PlasmiteError:
    if isinstance(err, NotFoundError) and err.seq is None:
        err.hint = (
            f"pool {pool!r} does not exist: call plasmite_feed with create: true, or plasmite_pool_create"
            if can_create
            else f"pool {pool!r} does not exist: check the name (plasmite_pool_list lists pools)"
        )
    return err


def _pool_dict(name: str, info: Any) -> dict:
    data = dict(info.to_dict())
    data["name"] = name
    return data


_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdSMHD])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ns: int) -> int:
    """``30s``/``5m``/``2h``/``1d`` ago, or an RFC 3339 time, as Unix nanoseconds."""
    m = _RELATIVE.match(text)
    if m:
        return max(0, now_ns - int(m.group(1)) * _UNIT_S[m.group(2).lower()] * 1_000_000_000)
    from plasmite_core.envelope import parse_rfc3339

    try:
        return parse_rfc3339(text.strip())
    except Exception:
        raise ArgumentError("since", "use a duration such as 5m or 2h, or an RFC 3339 time such as "
                                     "2026-01-15T00:00:00Z") from None


def read_batch(pool: PoolHandle, count: int, after_seq: int | None, since_ns: int | None, tags: list[str]) -> dict:
    """One non-blocking read: upstream's batch shape (messages, cursor, bounds, fell_behind).

    With ``after_seq``: the first ``count`` matches after it. Without: the
    newest ``count`` matches. Only seqs up to the newest one at the start are
    examined, and filters are applied here rather than by the stream, so the
    read ends at that seq on every transport (a remote stream cannot tell
    "nothing more matches" from "nothing yet"), and ``next_after_seq`` is
    exactly the last seq examined.
    """
    oldest, newest = pool.bounds()
    out = {
        "messages": [],
        "next_after_seq": after_seq,
        "last_returned_seq": None,
        "oldest_available_seq": oldest,
        "newest_available_seq": newest,
        "fell_behind": False,
    }
    if oldest is None:
        return out
    out["fell_behind"] = after_seq is not None and after_seq + 1 < oldest
    if after_seq is not None:
        start = max(oldest, after_seq + 1)
    elif tags or since_ns is not None:
        start = oldest
    else:
        start = max(oldest, newest - count + 1)
    if start > newest:
        return out
    wanted = set(tags)
    kept: deque = deque(maxlen=count if after_seq is None else None)
    examined = newest
    stream = pool.open_stream(since_seq=start, timeout_ms=READ_SAFETY_MS)
    try:
        while True:
            m = stream.next()
            if m is None or m.seq > newest:
                break
            if (not wanted or wanted.issubset(m.tags)) and (since_ns is None or m.time_ns >= since_ns):
                kept.append(m)
                if after_seq is not None and len(kept) >= count:
                    examined = m.seq
                    break
            if m.seq == newest:
                break
    finally:
        stream.close()
    messages = [_decode(m.raw) for m in kept]
    out["messages"] = messages
    out["next_after_seq"] = examined
    out["last_returned_seq"] = messages[-1]["seq"] if messages else None
    return out


class PoolTools:
    """The blocking tool bodies over one client. Each returns ``(summary, structured)``."""

    def __init__(self, client: TransportClient, *, max_pool_bytes: int = 0,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.client = client
        self.max_pool_bytes = max_pool_bytes
        self._now_ns = now_ns

    def _open(self, pool: str, can_create: bool = False):
        try:
            return self.client.open_pool(pool)
        except PlasmiteError as err:
            raise _missing_pool(err, pool, can_create) from None

    def pool_list(self, args: dict) -> tuple[str, dict]:
        Args(args, ())
        pools = sorted((_pool_dict(info.name, info) for info in self.client.list_pools()), key=lambda p: p["name"])
        text = (f"{len(pools)} pool(s)." if pools
                else "No pools yet: create one with plasmite_pool_create, or plasmite_feed with create: true.")
        return text, {"pools": pools}

    def pool_create(self, args: dict) -> tuple[str, dict]:
        a = Args(args, ("name", "size"))
        name = a.pool("name")
        size = a.uint("size", DEFAULT_POOL_SIZE_BYTES, low=1)
        if self.max_pool_bytes and size > self.max_pool_bytes:
            raise ArgumentError("size", f"this server creates pools of at most {self.max_pool_bytes} bytes")
        try:
            pool = self.client.create_pool(name, size)
        except PlasmiteError as err:
            if err.kind.label == "AlreadyExists":
                err.hint = f"pool {name!r} already exists and was left unchanged; use it as it is"
            raise
        try:
            info = pool.info()
        finally:
            pool.close()
        return f"Created pool {name!r}.", {"pool": _pool_dict(name, info)}

    def pool_info(self, args: dict) -> tuple[str, dict]:
        name = Args(args, ("pool",)).pool()
        try:
            info = self.client.pool_info(name)
        except PlasmiteError as err:
            raise _missing_pool(err, name, False) from None
        return f"Pool {name!r}.", {"pool": _pool_dict(name, info)}

    def pool_delete(self, args: dict) -> tuple[str, dict]:
        name = Args(args, ("pool",)).pool()
        try:
            self.client.delete_pool(name)
        except PlasmiteError as err:
            raise _missing_pool(err, name, False) from None
        return f"Deleted pool {name!r}.", {"deleted": {"pool": name}}

    def feed(self, args: dict) -> tuple[str, dict]:
        a = Args(args, ("pool", "data", "tags", "create"))
        name = a.pool()
        data = a.obj("data")
        tags = a.tags()
        create = a.boolean("create")
        try:
            pool = self.client.open_pool(name)
        except NotFoundError as err:
            if not create:
                raise _missing_pool(err, name, True) from None
            pool = self.client.pool(name)  # creates it, tolerating a racing creator
        try:
            message = pool.append(data, tags)
            envelope = _decode(message.raw)
        finally:
            pool.close()
        return f"Appended message {envelope['seq']} to {name!r}.", {"message": envelope}

    def fetch(self, args: dict) -> tuple[str, dict]:
        a = Args(args, ("pool", "seq"))
        name = a.pool()
        seq = a.uint("seq", required=True)
        pool = self._open(name)
        try:
            message = pool.get(seq)
        except NotFoundError as err:
            err.hint = f"seq {seq} is not retained in {name!r}; plasmite_read shows the retained range"
            raise
        finally:
            pool.close()
        return f"Message {seq} of {name!r}.", {"message": _decode(message.raw)}

    def read(self, args: dict) -> tuple[str, dict]:
        a = Args(args, ("pool", "count", "after_seq", "since", "tags"))
        name = a.pool()
        count = a.uint("count", DEFAULT_READ_COUNT, low=1, high=MAX_READ_COUNT)
        after_seq = a.uint("after_seq")
        since = a.string("since")
        since_ns = None if since is None else parse_since(since, self._now_ns())
        tags = a.tags()
        pool = self._open(name)
        try:
            batch = read_batch(pool, count, after_seq, since_ns, tags)
        finally:
            pool.close()
        return f"Read {len(batch['messages'])} message(s) from {name!r}.", batch

    # plasmite_wait: argument checks and single steps here, the waiting loop in the dispatcher.

    def wait_args(self, args: dict) -> tuple[str, int | None, int, int, list[str]]:
        a = Args(args, ("pool", "after_seq", "count", "timeout_ms", "tags"))
        name = a.pool()
        after_seq = a.uint("after_seq")
        count = a.uint("count", DEFAULT_READ_COUNT, low=1, high=MAX_READ_COUNT)
        timeout_ms = a.uint("timeout_ms", DEFAULT_WAIT_TIMEOUT_MS, high=MAX_WAIT_TIMEOUT_MS)
        return name, after_seq, count, timeout_ms, a.tags()

    def wait_start(self, name: str, after_seq: int | None) -> int:
        """The cursor a wait starts from: ``after_seq``, else the pool's newest seq."""
        if after_seq is not None:
            self._open(name).close()  # NotFound up front
            return after_seq
        pool = self._open(name)
        try:
            return pool.bounds()[1] or 0
        finally:
            pool.close()

    def wait_step(self, name: str, cursor: int, count: int, tags: list[str]) -> dict:
        pool = self._open(name)
        try:
            return read_batch(pool, count, cursor, None, tags)
        finally:
            pool.close()

    def wait_for_append(self, name: str, cursor: int, slice_ms: int) -> None:
        """Block up to ``slice_ms`` for a message after ``cursor`` (woken by the writer)."""
        pool = self._open(name)
        try:
            stream = pool.open_stream(since_seq=cursor + 1, timeout_ms=slice_ms)
            try:
                stream.next()
            finally:
                stream.close()
        finally:
            pool.close()

    def resource_list(self) -> list[dict]:
        out = []
        for info in sorted(self.client.list_pools(), key=lambda i: i.name):
            out.append(
                {
                    "uri": f"plasmite:///pools/{info.name}",
                    "name": info.name,
                    "description": f"The newest {DEFAULT_READ_COUNT} messages of pool {info.name} "
                                   f"({info.file_size} bytes; the oldest messages are overwritten when full)",
                    "mimeType": "application/json",
                }
            )
        return out

    def resource_read(self, name: str) -> dict:
        pool = self._open(name)
        try:
            return read_batch(pool, DEFAULT_READ_COUNT, None, None, [])
        finally:
            pool.close()


CALLS: dict[str, Callable[[PoolTools, dict], tuple[str, dict]]] = {
    "plasmite_pool_list": PoolTools.pool_list,
    "plasmite_pool_create": PoolTools.pool_create,
    "plasmite_pool_info": PoolTools.pool_info,
    "plasmite_pool_delete": PoolTools.pool_delete,
    "plasmite_feed": PoolTools.feed,
    "plasmite_fetch": PoolTools.fetch,
    "plasmite_read": PoolTools.read,
}
