"""The asyncio shell of the remote client: ``AsyncRemoteClient``, ``AsyncRemotePool``, ``AsyncRemoteTail``.

The same calls as ``sync_client`` as coroutines, built from the same ``client_wire``
requests and tail state, so both clients accept, refuse and resume alike.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterable

from plasmite_core.envelope import Message, parse_message
from plasmite_core.errors import IoError, NotFoundError, PlasmiteError, UsageError

from . import _http
from .sync_client import RemoteClient
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
    closed_error,
)


class AsyncRemoteClient:
    """The asyncio client: same methods and keywords as RemoteClient, as coroutines."""

    def __init__(self, url: str, *, token: str | None = None, token_file: str | None = None,
                 tls_ca: str | None = None, tls_skip_verify: bool = False, timeout: float = 30.0) -> None:
        self._setup(RemoteClient(url, token=token, token_file=token_file, tls_ca=tls_ca,
                                 tls_skip_verify=tls_skip_verify, timeout=timeout))

    @classmethod
    def _from_sync(cls, client: RemoteClient) -> "AsyncRemoteClient":
        self = cls.__new__(cls)
        self._setup(client)
        return self

    def _setup(self, client: RemoteClient) -> None:
        self._sync = client  # settings: target, headers, TLS context, timeout
        self._requests: Requests = client._requests
        self._conn: _http.AsyncConnection | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._sync.base_url

    def _new_connection(self, read_timeout: float | None) -> _http.AsyncConnection:
        t = self._sync._target
        return _http.AsyncConnection(t.host, t.port, self._sync._ssl, t.host,
                                     connect_timeout=min(self._sync.timeout, 10.0), read_timeout=read_timeout)

    def _shared(self) -> _http.AsyncConnection:
        if self._closed:
            raise closed_error("client")
        if self._conn is None:
            self._conn = self._new_connection(self._sync.timeout)
        return self._conn

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _run(self, call: Call) -> Any:
        async with self._guard():
            status, headers, body = await self._shared().request(call.data, retry_safe=call.retry_safe)
        return call.finish(status, headers, body)

    def _name(self, ref: str | None) -> str:
        if self._closed:
            raise closed_error("client")
        return self._requests.name(ref)

    # -- lifecycle
    async def create_pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, *,
                          index_capacity: int | None = None, codec: str = "json") -> "AsyncRemotePool":
        name = self._name(ref)
        info = await self._run(self._requests.create_pool(name, size_bytes, index_capacity, codec))
        return AsyncRemotePool(self, name, info)

    async def open_pool(self, ref: str | None = None) -> "AsyncRemotePool":
        name = self._name(ref)
        return AsyncRemotePool(self, name, await self._run(self._requests.open_pool(name)))

    async def pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES) -> "AsyncRemotePool":
        try:
            return await self.open_pool(ref)
        except NotFoundError:
            pass
        try:
            return await self.create_pool(ref, size_bytes)
        except PlasmiteError as err:
            if err.kind.label == "AlreadyExists":
                return await self.open_pool(ref)
            raise

    async def pool_info(self, ref: str | None = None) -> RemotePoolInfo:
        return await self._run(self._requests.pool_info(self._name(ref)))

    async def list_pools(self) -> list[RemotePoolInfo]:
        if self._closed:
            raise closed_error("client")
        return await self._run(self._requests.list_pools())

    async def delete_pool(self, ref: str | None = None) -> None:
        await self._run(self._requests.delete_pool(self._name(ref)))

    async def healthz(self) -> bool:
        return await self._run(self._requests.healthz())

    async def aclose(self) -> None:
        self._closed = True
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> "AsyncRemoteClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncRemoteClient({self.base_url!r})"


class AsyncRemotePool(PoolAddress):
    """A pool on a server, with coroutine methods (``async for m in pool.tail()``)."""

    client: AsyncRemoteClient

    # -- writes
    async def append_json(self, payload: bytes, tags: Iterable[str] = (), durability=0) -> bytes:
        return await self.client._run(self._req().append_json(self._quoted, payload, tags, durability))

    async def append(self, data: Any, tags: Iterable[str] | None = None, durability=0) -> Message:
        return await self.client._run(self._req().append(self._quoted, data, tags, durability))

    async def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None,
                          durability=0) -> list[Message]:
        """Append many messages, pipelined as RemotePool.append_many (``err.stored`` on failure)."""
        requests = self._req().append_many(self._quoted, values, tags, durability)
        client = self.client
        batch = Batch(client.base_url)
        async with client._guard():
            conn = client._shared()
            for start in range(0, len(requests), PIPELINE):
                window = requests[start : start + PIPELINE]
                try:
                    if conn.writer is None or conn.reader is None or conn.reader.at_eof() or conn.writer.is_closing():
                        await conn.connect()  # none yet, or the server closed the idle one
                    assert conn.writer is not None
                    conn.writer.write(b"".join(window))
                    await conn.writer.drain()
                    for _ in window:
                        status, headers = await asyncio.wait_for(conn.read_head(), client._sync.timeout)
                        body, keep = await asyncio.wait_for(conn.read_body(headers), client._sync.timeout)
                        batch.answer(status, body)
                        if not keep:
                            await conn.close()
                            break
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                    await conn.close()
                    raise batch.failed(exc) from None
                batch.check_window(start + len(window))
        return batch.messages()

    # -- reads
    async def get_json(self, seq: int) -> bytes:
        return await self.client._run(self._req().get_json(self._quoted, seq))

    async def get(self, seq: int) -> Message:
        return await self.client._run(self._req().get(self._quoted, seq))

    async def info(self) -> RemotePoolInfo:
        self._info = await self.client._run(self._req().info(self._quoted))
        return self._info

    async def bounds(self) -> tuple[int | None, int | None]:
        info = await self.info()
        return info.oldest_seq, info.newest_seq

    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> "AsyncRemoteTail":
        self._req()
        return AsyncRemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    async def tail(self, since_seq: int | None = None, max_messages: int | None = None,
                   timeout_ms: int | None = None, tags: Iterable[str] | None = None, error_on_gap: bool = False,
                   **options: Any) -> AsyncIterator[Message]:
        stream = self.open_stream(since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options)
        try:
            while True:
                m = await stream.next()
                if m is None:
                    return
                yield m
        finally:
            await stream.aclose()

    atail = tail

    # -- Lite3 byte endpoints
    async def append_lite3(self, payload: bytes, durability=0) -> int:
        return await self.client._run(self._req().append_lite3(self._quoted, payload, durability))

    async def get_lite3(self, seq: int):
        frame = await self.client._run(self._req().get_lite3(self._quoted, seq))
        if frame.timestamp_ns is None:
            frame = frame._replace(timestamp_ns=(await self.get(frame.seq)).time_ns)
        return frame

    def open_lite3_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                          timeout_ms: int | None = None, error_on_gap: bool = False,
                          **options: Any) -> "AsyncRemoteLite3Tail":
        self._req()
        return AsyncRemoteLite3Tail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    async def tail_lite3(self, since_seq: int | None = None, max_messages: int | None = None,
                         timeout_ms: int | None = None, tags: Iterable[str] | None = None,
                         **options: Any) -> AsyncIterator:
        stream = self.open_lite3_stream(since_seq, max_messages, timeout_ms, tags=tags, **options)
        try:
            async for frame in stream:
                yield frame
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        self._closed = True

    def close(self) -> None:
        self._closed = True

    async def __aenter__(self) -> "AsyncRemotePool":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AsyncRemotePool({self.url!r})"


class AsyncRemoteTail(TailHandle):
    """``async for raw in tail`` yields envelopes (bytes); ``await tail.next()`` a Message."""

    def __init__(self, pool: AsyncRemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> None:
        super().__init__(pool, since_seq, max_messages, timeout_ms, error_on_gap, **options)
        self._conn: _http.AsyncConnection | None = None
        self._chunks: AsyncIterator[bytes] | None = None

    async def _open(self) -> None:
        core = self._core
        if core.last is not None:
            core.resolve_last(await self.pool.bounds())
        client = self.pool.client
        while True:
            conn = client._new_connection(IDLE_RECONNECT_S)
            await conn.connect()
            assert conn.writer is not None
            conn.writer.write(core.request(client._requests.headers))
            try:
                await conn.writer.drain()
                status, headers = await conn.read_head()
            except OSError as exc:
                await conn.close()
                if isinstance(exc, PlasmiteError):
                    raise
                raise IoError(f"tail request to {client.base_url} failed: {exc}") from None
            if status != 200:
                try:
                    body, _ = await conn.read_body(headers)
                except OSError:
                    body = b""
                await conn.close()
                core.refused(status, body)
                continue
            self._conn = conn
            core.connected = True
            self._backoff.reset()
            mode, _ = _http._framing(headers)
            self._chunks = conn.iter_chunked() if mode == "chunked" else _read_to_eof(conn)
            return

    async def _drop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None
        self._chunks = None
        self._core.dropped()

    async def _next_item(self):
        core = self._core
        while True:
            try:
                item = core.take()
            except RemoteError:
                await self._drop()
                raise
            if item is not None:
                if core.done:
                    await self._drop()
                return item
            if core.finished():
                await self._drop()
                return None
            if self._chunks is None:
                try:
                    await self._open()
                except RemoteError:
                    raise
                except IoError as err:
                    await asyncio.sleep(self._backoff.next_delay(core, err))
                    continue
            assert self._chunks is not None
            try:
                data = await asyncio.wait_for(self._chunks.__anext__(), core.read_wait(None))
            except (StopAsyncIteration, asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
                await self._drop()  # the server ended the response, or the connection idled or failed
                continue
            core.feed(data)

    async def next_json(self) -> bytes | None:
        return await self._next_item()

    async def next(self) -> Message | None:
        raw = await self._next_item()
        return None if raw is None else parse_message(raw)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        raw = await self._next_item()
        if raw is None:
            raise StopAsyncIteration
        return raw

    async def aclose(self) -> None:
        self._core.close()
        await self._drop()

    async def __aenter__(self) -> "AsyncRemoteTail":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class AsyncRemoteLite3Tail(AsyncRemoteTail):
    """The asyncio ``tail_lite3`` stream: ``await next()`` and ``async for`` give ``Lite3Frame``."""

    _lite3 = True

    async def next(self):
        return await self._next_item()

    async def next_json(self) -> bytes | None:
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="use next(), or open_stream() for JSON")

    async def __aenter__(self) -> "AsyncRemoteLite3Tail":
        return self


async def _read_to_eof(conn: _http.AsyncConnection):
    assert conn.reader is not None
    while True:
        data = await conn.reader.read(_http.RECV)
        if not data:
            return
        yield data
