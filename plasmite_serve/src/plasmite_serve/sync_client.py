"""The blocking shell of the remote client: ``RemoteClient``, ``RemotePool``, ``RemoteTail``.

Requests, answers and tail state come from ``client_wire`` and ``tail_state``; this module only sends
and receives on sockets. One keep-alive connection per client is shared under
a lock; each tail opens a connection of its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, AsyncIterator, Iterable, Iterator

from plasmite_core.envelope import Message, parse_message
from plasmite_core.errors import IoError, NotFoundError, PlasmiteError, UsageError
from plasmite_core.pacing import check_speed, paced
from plasmite_core.stream_base import StreamIteration

from . import _http
from .tail_state import IDLE_RECONNECT_S, TailHandle
from .client_wire import (
    DEFAULT_POOL_SIZE_BYTES,
    PIPELINE,
    Batch,
    Call,
    PoolAddress,
    RemoteError,
    RemotePoolInfo,
    Requests,
    Target,
    closed_error,
)


class RemoteClient:
    """A client of one Plasmite server: ``RemoteClient("http://127.0.0.1:9700", token=...)``.

    The URL may name a pool (``http://host:9700/demo``); ``open_pool()`` then
    defaults to it. Keywords: ``token`` or ``token_file``, ``tls_ca``,
    ``tls_skip_verify``, ``timeout`` (seconds per request).
    """

    def __init__(self, url: str, *, token: str | None = None, token_file: str | None = None,
                 tls_ca: str | None = None, tls_skip_verify: bool = False, timeout: float = 30.0) -> None:
        target = Target(url)
        if token is not None and token_file is not None:
            raise UsageError("give token or token_file, not both")
        if token_file is not None:
            from plasmite_core.tokens import read_token_file

            token = read_token_file(token_file)
        self.token = token
        self.timeout = timeout
        self._target = target
        self._requests = Requests(target, token)
        self._ssl = _http.make_ssl_context(tls_ca, tls_skip_verify) if target.scheme == "https" else None
        self._conn: _http.SyncConnection | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._target.base_url

    def _new_connection(self, read_timeout: float | None) -> _http.SyncConnection:
        t = self._target
        return _http.SyncConnection(t.host, t.port, self._ssl, t.host,
                                    connect_timeout=min(self.timeout, 10.0), read_timeout=read_timeout)

    def _shared(self) -> _http.SyncConnection:
        if self._closed:
            raise closed_error("client")
        if self._conn is None:
            self._conn = self._new_connection(self.timeout)
        return self._conn

    def _run(self, call: Call) -> Any:
        with self._lock:
            status, headers, body = self._shared().request(call.data, retry_safe=call.retry_safe)
        return call.finish(status, headers, body)

    def _name(self, ref: str | None) -> str:
        if self._closed:
            raise closed_error("client")
        return self._requests.name(ref)

    # -- lifecycle
    def create_pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, *,
                    index_capacity: int | None = None, codec: str = "json") -> "RemotePool":
        name = self._name(ref)
        info = self._run(self._requests.create_pool(name, size_bytes, index_capacity, codec))
        return RemotePool(self, name, info)

    def open_pool(self, ref: str | None = None) -> "RemotePool":
        name = self._name(ref)
        # A write-only server may not let us read pool info (403): appends can still work.
        return RemotePool(self, name, self._run(self._requests.open_pool(name)))

    def pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES) -> "RemotePool":
        """Open the pool, creating it when missing (safe against a racing creator)."""
        try:
            return self.open_pool(ref)
        except NotFoundError:
            pass
        try:
            return self.create_pool(ref, size_bytes)
        except PlasmiteError as err:
            if err.kind.label == "AlreadyExists":
                return self.open_pool(ref)
            raise

    def pool_info(self, ref: str | None = None) -> RemotePoolInfo:
        return self._run(self._requests.pool_info(self._name(ref)))

    def list_pools(self) -> list[RemotePoolInfo]:
        if self._closed:
            raise closed_error("client")
        return self._run(self._requests.list_pools())

    def delete_pool(self, ref: str | None = None) -> None:
        self._run(self._requests.delete_pool(self._name(ref)))

    def healthz(self) -> bool:
        return self._run(self._requests.healthz())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "RemoteClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteClient({self.base_url!r})"


class RemotePool(PoolAddress):
    """A pool on a server; the ``PoolHandle`` contract over HTTP."""

    client: RemoteClient

    # -- writes
    def append_json(self, payload: bytes, tags: Iterable[str] = (), durability=0) -> bytes:
        """Append a JSON document given as text; returns the stored envelope (bytes)."""
        return self.client._run(self._req().append_json(self._quoted, payload, tags, durability))

    def append(self, data: Any, tags: Iterable[str] | None = None, durability=0) -> Message:
        return self.client._run(self._req().append(self._quoted, data, tags, durability))

    def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None, durability=0) -> list[Message]:
        """Append many messages, pipelining up to 64 requests on the connection.

        On a refused message the first error is raised after its window of 64
        was answered; the messages that were stored (before it, and after it in
        the same window) are on the error as ``err.stored`` (a list of Message).
        """
        requests = self._req().append_many(self._quoted, values, tags, durability)
        client = self.client
        batch = Batch(client.base_url)
        with client._lock:
            conn = client._shared()
            for start in range(0, len(requests), PIPELINE):
                window = requests[start : start + PIPELINE]
                try:
                    conn.send_request(b"".join(window))
                    for _ in window:
                        status, headers = conn.read_head()
                        body, keep = conn.read_body(headers)
                        batch.answer(status, body)
                        if not keep:
                            conn.close()
                            break
                except (OSError, socket.timeout) as exc:
                    conn.close()
                    raise batch.failed(exc) from None
                conn.last_used = time.monotonic()
                batch.check_window(start + len(window))
        return batch.messages()

    # -- reads
    def get_json(self, seq: int) -> bytes:
        return self.client._run(self._req().get_json(self._quoted, seq))

    def get(self, seq: int) -> Message:
        return self.client._run(self._req().get(self._quoted, seq))

    def info(self) -> RemotePoolInfo:
        self._info = self.client._run(self._req().info(self._quoted))
        return self._info

    def bounds(self) -> tuple[int | None, int | None]:
        info = self.info()
        return info.oldest_seq, info.newest_seq

    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> "RemoteTail":
        """A stream like the local one: ``next_json()``, ``next()``, ``poll``, iteration.

        Keywords: ``last`` (the N newest, then live), ``tags``, ``on_gap``.
        """
        self._req()
        return RemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail(self, since_seq: int | None = None, max_messages: int | None = None, timeout_ms: int | None = None,
             tags: Iterable[str] | None = None, error_on_gap: bool = False, **options: Any) -> Iterator[Message]:
        with self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options) as stream:
            yield from stream.messages()

    async def atail(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, tags: Iterable[str] | None = None, error_on_gap: bool = False,
                    **options: Any) -> AsyncIterator[Message]:
        """``async for`` over messages, on an asyncio connection of its own."""
        from .async_client import AsyncRemoteClient, AsyncRemotePool

        apool = AsyncRemotePool(AsyncRemoteClient._from_sync(self.client), self.name)
        async for m in apool.tail(since_seq, max_messages, timeout_ms, tags, error_on_gap, **options):
            yield m

    def replay(self, speed: float = 1.0, since_seq: int | None = None, max_messages: int | None = None,
               timeout_ms: int | None = None, tags: Iterable[str] | None = None,
               **options: Any) -> Iterator[Message]:
        """Messages with their original spacing divided by ``speed`` (0: no delay)."""
        check_speed(speed)
        return paced(self.tail(since_seq, max_messages, timeout_ms, tags, **options), speed)

    # -- Lite3 byte endpoints
    def append_lite3(self, payload: bytes, durability=0) -> int:
        """Append a Lite3 message document ``{"meta":{"tags"},"data"}``; returns its seq."""
        return self.client._run(self._req().append_lite3(self._quoted, payload, durability))

    def get_lite3(self, seq: int):
        """The message as a ``Lite3Frame`` (payload: the Lite3 document of meta + data)."""
        frame = self.client._run(self._req().get_lite3(self._quoted, seq))
        if frame.timestamp_ns is None:  # a server without the time header (upstream's)
            frame = frame._replace(timestamp_ns=self.get(frame.seq).time_ns)
        return frame

    def open_lite3_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                          timeout_ms: int | None = None, error_on_gap: bool = False,
                          **options: Any) -> "RemoteLite3Tail":
        """Like ``open_stream``, over ``tail_lite3``: ``next()`` and iteration give ``Lite3Frame``."""
        self._req()
        return RemoteLite3Tail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail_lite3(self, since_seq: int | None = None, max_messages: int | None = None,
                   timeout_ms: int | None = None, tags: Iterable[str] | None = None, **options: Any) -> Iterator:
        """``Lite3Frame`` objects in seq order, waiting for new ones until max/timeout."""
        with self.open_lite3_stream(since_seq, max_messages, timeout_ms, tags=tags, **options) as stream:
            yield from stream

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "RemotePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemotePool({self.url!r})"


class RemoteTail(TailHandle, StreamIteration):
    """A resumable JSON Lines tail: the ``StreamHandle`` contract over HTTP."""

    def __init__(self, pool: RemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> None:
        super().__init__(pool, since_seq, max_messages, timeout_ms, error_on_gap, **options)
        self._conn: _http.SyncConnection | None = None
        self._body: _http.SyncBodyStream | None = None
        if self._core.last is not None:
            self._core.resolve_last(pool.bounds())
        self._open()  # errors such as NotFound or Permission surface here, as for a local stream

    def _open(self) -> None:
        core = self._core
        client = self.pool.client
        while True:
            conn = client._new_connection(IDLE_RECONNECT_S)
            try:
                conn.send_request(core.request(client._requests.headers))
                status, headers = conn.read_head()
            except PlasmiteError:
                conn.close()
                raise
            except OSError as exc:
                conn.close()
                raise IoError(f"tail request to {client.base_url} failed: {exc}") from None
            if status != 200:
                try:
                    body, _ = conn.read_body(headers)
                except OSError:
                    body = b""
                conn.close()
                core.refused(status, body)
                continue
            self._conn = conn
            self._body = _http.SyncBodyStream(conn, headers)
            core.connected = True
            self._backoff.reset()
            return

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._body = None
        self._core.dropped()

    def _reconnect(self) -> bool:
        """Reopen after the server ended the stream or the connection failed; False when done."""
        while not self._core.finished():
            try:
                self._open()
                return True
            except RemoteError:
                raise
            except IoError as err:
                time.sleep(self._backoff.next_delay(self._core, err))
        return False

    def _next_item(self, timeout_ms: int | None = None):
        core = self._core
        call_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            try:
                item = core.take()
            except RemoteError:
                self._drop()
                raise
            if item is not None:
                if core.done:
                    self._drop()
                return item
            if core.finished():
                self._drop()
                return None
            if self._body is None:
                if not self._reconnect():
                    return None
                continue
            assert self._conn is not None
            self._conn.settimeout(core.read_wait(call_deadline))
            try:
                data = self._body.read_some()
            except socket.timeout:
                if call_deadline is not None and time.monotonic() >= call_deadline:
                    return None
                self._drop()  # idle for too long (or the stream's deadline): reconnect or finish
                continue
            except OSError:  # includes a PlasmiteError from a malformed body
                self._drop()
                continue
            if data is None:
                # The server ended this response (its timeout or our max): resume if not done.
                self._drop()
                continue
            core.feed(data)

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        """The next envelope (bytes); None when the stream ended or ``timeout_ms`` passed."""
        return self._next_item(timeout_ms)

    def next(self, timeout_ms: int | None = None) -> Message | None:
        raw = self._next_item(timeout_ms)
        return None if raw is None else parse_message(raw)

    def poll(self, limit: int | None = None) -> list[Message]:
        """Messages that arrived already (at most ``limit``), without waiting."""
        return [parse_message(raw) for raw in self.poll_json(limit)]

    def poll_json(self, limit: int | None = 1024) -> list[bytes]:
        """Envelopes that arrived already (at most ``limit``), without waiting."""
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            raw = self._next_item(0)
            if raw is None:
                break
            out.append(raw)
        return out

    async def __aiter__(self) -> AsyncIterator[Message]:
        """``async for m in stream``: reads run in a worker thread, in short slices."""
        while True:
            m = await asyncio.to_thread(self.next, 200)
            if m is not None:
                yield m
            elif self._core.finished():
                return

    def close(self) -> None:
        self._core.close()
        self._drop()


class RemoteLite3Tail(RemoteTail):
    """A resumable ``tail_lite3`` stream: ``next()`` and iteration give ``Lite3Frame``.

    Frames are ``[u64be seq][u64be time_ns][u32be len][payload]``; the same
    resume and de-duplication rules as RemoteTail apply. ``gap_policy=error``
    does not exist for Lite3 streams (upstream refuses it too).
    """

    _lite3 = True

    def next(self, timeout_ms: int | None = None):
        """The next ``Lite3Frame``; None when the stream ended or ``timeout_ms`` passed."""
        return self._next_item(timeout_ms)

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="use next(), or open_stream() for JSON")

    def messages(self):
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="iterate it, or use open_stream()")

    def poll_json(self, limit: int | None = 1024) -> list[bytes]:
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="use next(), or open_stream() for JSON")

    def poll(self, limit: int | None = None) -> list[Any]:
        out: list[Any] = []
        while limit is None or len(out) < limit:
            frame = self._next_item(0)
            if frame is None:
                break
            out.append(frame)
        return out

    def __next__(self):
        frame = self._next_item()
        if frame is None:
            raise StopIteration
        return frame
