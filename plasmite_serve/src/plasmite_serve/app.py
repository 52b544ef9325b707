"""The ASGI application speaking Plasmite remote protocol v0.

Written against bare ASGI (no framework) because the protocol is small and the
hot paths are byte-level: an append or a get on an already-open pool runs on
the event loop in a few microseconds (no thread hop, which would halve the
request rate), and a tail forwards the core's raw JSON envelopes in batches.
A tail takes what is ready without waiting, on the loop, and when nothing is
ready awaits the core's ``Stream.anext()``, which sleeps on one shared waiter
thread per pool: 64 idle tails cost no threads of their own, and a client
disconnect ends its tail at once. Operations that can block for longer
(create/open/delete/list/info, flushed appends) run in a bounded worker pool.
Both budgets are admission limits: beyond them the server answers Busy/423 at
once instead of queueing.

The Lite3 byte endpoints build each message's Lite3 document with the core's
conversion on the loop; the Lite3 tail does it in batches of 256 (a few ms).

Use it alone (``pls serve`` runs it on uvicorn) or mount it::

    from plasmite_serve import create_app
    app = create_app(pool_dir="/srv/pools", token="s3cret", access="read-only")
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
import threading
import time
from base64 import b64encode
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

import msgspec

from plasmite_core.errors import (
    BusyError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    PlasmiteError,
    RetentionGapError,
    UsageError,
    from_os_error,
)

from plasmite_core.client import Durability
from plasmite_core.refs import validate_pool_name

from .config import ResolvedConfig, ServeConfig, resolve

PROTOCOL_VERSION = b"0"
TAIL_RECHECK_S = 1.0  # an idle tail rechecks its deadline and server shutdown this often
TAIL_BATCH_MESSAGES = 4096
TAIL_BATCH_BYTES = 256 * 1024
SSE_KEEPALIVE_S = 15.0
# A Lite3 frame costs ~30 us to build in pure Python, on the event loop: a
# batch of 256 (~120 KiB written at once) holds the loop for ~8 ms at most.
LITE3_BATCH_MESSAGES = 256
LITE3_TYPE = b"application/x-plasmite-lite3"
LITE3_STREAM_TYPE = b"application/x-plasmite-lite3-stream"
_JSONL, _SSE, _LITE3 = 0, 1, 2
_frame_head = struct.Struct(">QQI").pack
POOL_CACHE_SIZE = 256

_json_encode = msgspec.json.encode


# ------------------------------------------------------------------ requests


class CreatePoolBody(msgspec.Struct):
    pool: str
    size_bytes: int | None = None


class PoolBody(msgspec.Struct):
    pool: str


class AppendBody(msgspec.Struct):
    data: msgspec.Raw
    tags: list[str] | None = None
    durability: str | None = None


_create_decoder = msgspec.json.Decoder(CreatePoolBody)
_pool_decoder = msgspec.json.Decoder(PoolBody)
_append_decoder = msgspec.json.Decoder(AppendBody)


class HttpError(Exception):
    """A PlasmiteError with the HTTP status it must be answered with."""

    def __init__(self, error: PlasmiteError, status: int | None = None, headers: list | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status or error.kind.http_status
        self.headers = headers or []


def error_envelope(error: PlasmiteError) -> bytes:
    return _json_encode({"error": error.to_dict()})


def _as_plasmite_error(exc: BaseException, path: str | None = None) -> PlasmiteError:
    if isinstance(exc, PlasmiteError):
        return exc
    if isinstance(exc, OSError):
        return from_os_error(exc, path)
    return InternalError(f"internal error: {type(exc).__name__}: {exc}", hint="this is a bug; please report it")


def _decode_body(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    if not body.strip():
        raise UsageError("request body is required", hint="send a JSON object, e.g. {\"pool\": \"demo\"}")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise UsageError(f"invalid request body: {exc}", hint="see /openapi.json for the request shape") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"malformed JSON body: {exc}", hint="send a valid JSON object") from None
    except RecursionError:
        raise UsageError("request body is nested too deeply", hint="flatten the JSON document") from None
    except UnicodeError:
        raise UsageError("request body is not valid UTF-8", hint="send UTF-8 encoded JSON") from None


def _pool_name(raw: str) -> str:
    if "/" in raw or "\\" in raw:
        raise UsageError(
            f"pool name must not contain path separators: {raw!r}",
            hint="remote pool refs are names only; path-based refs are local-only",
        )
    return validate_pool_name(raw)


def _parse_uint(name: str, value: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise UsageError(f"invalid {name}: {value!r}", hint=f"{name} must be a non-negative integer") from None
    if number < 0 or not value.strip().isdigit():
        raise UsageError(f"invalid {name}: {value!r}", hint=f"{name} must be a non-negative integer")
    return number


def _durability(value: str | None):
    if value is None or value == "fast":
        return Durability.FAST
    if value == "flush":
        return Durability.FLUSH
    raise UsageError(f"invalid durability {value!r}", hint='use "fast" (default) or "flush"')


def _seq_of(raw: bytes) -> int:
    """The seq of a compact envelope (``{"seq":N,...``) without decoding it."""
    if raw.startswith(b'{"seq":'):
        end = raw.find(b",", 7)
        if end > 7:
            try:
                return int(raw[7:end])
            except ValueError:
                pass
    return int(msgspec.json.decode(raw)["seq"])


# ------------------------------------------------------------------- the app


class _PoolHandle:
    __slots__ = ("pool", "dev", "ino", "refs", "evicted")

    def __init__(self, pool, dev: int, ino: int) -> None:
        self.pool = pool
        self.dev = dev
        self.ino = ino
        self.refs = 0  # tails using it
        self.evicted = False


class _Admission:
    """A non-blocking counter: take() fails instead of queueing."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.active >= self.capacity:
                return False
            self.active += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.active -= 1


class _TailQuery:
    __slots__ = ("since_seq", "max", "timeout_ms", "tags", "error_on_gap", "last")

    def __init__(self) -> None:
        self.since_seq: int | None = None
        self.max: int | None = None
        self.timeout_ms: int | None = None
        self.tags: list[str] = []
        self.error_on_gap = False
        self.last: int | None = None


class PlasmiteApp:
    """ASGI callable. Build it with :func:`create_app`."""

    def __init__(self, config: ResolvedConfig) -> None:
        self.config = config
        self.pool_dir = Path(config.pool_dir)
        self._token_header = config.token.encode() if config.token else None
        self._cors = set(config.cors_origins)
        self._pools: OrderedDict[str, _PoolHandle] = OrderedDict()
        from .store import open_store

        self.store = open_store(config)  # a pool directory, or --backend's server
        self._storage_pool: ThreadPoolExecutor | None = None
        self._storage_admission = _Admission(config.max_tail_concurrency)
        self._tail_admission = _Admission(config.max_tail_concurrency)
        self._closing = False
        self._ui_html, self._ui_csp = _load_ui()
        from .openapi import openapi_document

        self._openapi = _json_encode(
            openapi_document(
                max_tail_timeout_ms=self.config.max_tail_timeout_ms,
                max_pool_bytes=getattr(self.config, "max_pool_bytes", None) or None,
            )
        )

    # ---- resources (lazy: a mounted app may never see lifespan events)

    @property
    def client(self):
        return self.store.client

    def _storage_executor(self) -> ThreadPoolExecutor:
        if self._storage_pool is None:
            self._storage_pool = ThreadPoolExecutor(
                max_workers=min(16, self.config.max_tail_concurrency), thread_name_prefix="plasmite-storage"
            )
        return self._storage_pool

    def begin_shutdown(self) -> None:
        """End open tails cleanly (each within one read slice); new requests are still served."""
        self._closing = True

    def close(self) -> None:
        """Stop tails and release pools, threads and file handles."""
        self._closing = True
        for handle in self._pools.values():
            try:
                handle.pool.close()
            except Exception:
                pass
        self._pools.clear()
        if self._storage_pool is not None:
            self._storage_pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.store.close()
        except Exception:
            pass

    async def _storage(self, fn: Callable, *args) -> Any:
        if not self._storage_admission.take():
            raise HttpError(
                BusyError("server storage workers are saturated", hint="retry after in-flight requests complete")
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._storage_executor(), fn, *args)
        finally:
            self._storage_admission.give()

    def _handle(self, name: str) -> _PoolHandle:
        """The shared open handle for ``name`` (event loop only).

        One mapping per pool serves every append, get and tail of this
        process: 64 tails of a pool do not map its file 64 times. A handle is
        reopened when the file was replaced, and closed once it is both out of
        the cache and no longer used by a tail.
        """
        try:
            dev, ino = self.store.identity(name)
        except NotFoundError:
            self._evict(name)
            raise
        handle = self._pools.get(name)
        if handle is not None and handle.dev == dev and handle.ino == ino:
            self._pools.move_to_end(name)
            return handle
        self._evict(name)
        pool = self.store.open(name)
        handle = self._pools[name] = _PoolHandle(pool, dev, ino)
        while len(self._pools) > POOL_CACHE_SIZE:
            old_name = next(iter(self._pools))
            self._evict(old_name)
        return handle

    def _cached_pool(self, name: str):
        return self._handle(name).pool

    def _evict(self, name: str) -> None:
        handle = self._pools.pop(name, None)
        if handle is not None:
            handle.evicted = True
            if handle.refs == 0:
                handle.pool.close()

    def _release(self, handle: _PoolHandle) -> None:
        handle.refs -= 1
        if handle.refs == 0 and handle.evicted:
            handle.pool.close()

    # ---- ASGI entry

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        method = scope["method"]
        headers = scope["headers"]
        origin = None
        for key, value in headers:
            if key == b"origin":
                origin = value.decode("latin-1")
        cors_headers = self._cors_headers(origin)
        try:
            segments = _segments(scope)
            if method == "OPTIONS":
                await self._preflight(origin, headers, send)
                return
            await self._route(method, segments, scope, receive, send, cors_headers)
        except HttpError as exc:
            await _send_error(send, exc.error, exc.status, cors_headers + exc.headers)
        except PlasmiteError as exc:
            await _send_error(send, exc, exc.kind.http_status, cors_headers)
        except Exception as exc:  # never a traceback on the wire
            err = _as_plasmite_error(exc)
            await _send_error(send, err, err.kind.http_status, cors_headers)

    # ---- CORS

    def _cors_headers(self, origin: str | None) -> list:
        if origin is not None and origin in self._cors:
            return [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", b"plasmite-version, plasmite-seq, plasmite-time-ns"),
                (b"vary", b"origin"),
            ]
        return [(b"vary", b"origin")] if self._cors else []

    async def _preflight(self, origin: str | None, headers, send) -> None:
        wants = any(k == b"access-control-request-method" for k, _ in headers)
        if origin is None or not wants:
            raise HttpError(
                UsageError("OPTIONS is only answered as a CORS preflight"), 405,
                [(b"allow", b"GET, POST, DELETE, OPTIONS")],
            )
        if origin not in self._cors:
            raise HttpError(
                PermissionDeniedError(
                    f"origin not allowed: {origin}", hint="the server operator can allow it with --cors-origin"
                ),
                403,
            )
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                    (b"access-control-allow-headers", b"authorization, content-type"),
                    (b"access-control-max-age", b"600"),
                    (b"vary", b"origin"),
                    (b"plasmite-version", PROTOCOL_VERSION),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    # ---- auth + access

    def _authorize(self, scope) -> None:
        expected = self._token_header
        if expected is None:
            return
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if not values:
            raise HttpError(
                PermissionDeniedError("missing bearer token", hint="send Authorization: Bearer <token>"),
                401, [(b"www-authenticate", b"Bearer")],
            )
        scheme, _, presented = values[0].partition(b" ") if len(values) == 1 else (b"", b"", b"")
        # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(presented, expected):
            raise HttpError(
                PermissionDeniedError("invalid bearer token", hint="check the token (or --token-file) you are using"),
                401, [(b"www-authenticate", b'Bearer error="invalid_token"')],
            )

    def _require(self, read: bool) -> None:
        ok = self.config.allows_read if read else self.config.allows_write
        if not ok:
            what = "read" if read else "write"
            raise HttpError(
                PermissionDeniedError(
                    f"forbidden: access mode {self.config.access} disallows {what} operations",
                    hint="the server operator can change it with --access",
                ),
                403,
            )

    # ---- routing

    async def _route(self, method: str, seg: list[str], scope, receive, send, cors: list) -> None:
        n = len(seg)
        if n and seg[0] == "v0":
            self._authorize(scope)
            if n >= 2 and seg[1] == "pools":
                if n == 2:
                    if method == "GET":
                        self._require(read=True)
                        return await self._list(send, cors)
                    if method == "POST":
                        self._require(read=False)
                        body = await _read_body(scope, receive, self.config.max_body_bytes)
                        return await self._create(body, send, cors)
                    _method_not_allowed(method, "GET, POST")
                if n == 3 and seg[2] == "open" and method == "POST":
                    self._require(read=True)
                    body = await _read_body(scope, receive, self.config.max_body_bytes)
                    return await self._open(body, send, cors)
                if n == 3:
                    if method != "DELETE":
                        _method_not_allowed(method, "DELETE")
                    self._require(read=False)
                    return await self._delete(_pool_name(seg[2]), send, cors)
                action = seg[3]
                if n == 4 and action == "info":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._info(_pool_name(seg[2]), send, cors)
                if n == 4 and action == "append":
                    _expect(method, "POST")
                    self._require(read=False)
                    name = _pool_name(seg[2])
                    body = await _read_body(scope, receive, self.config.max_body_bytes)
                    return await self._append(name, body, send, cors)
                if n == 5 and action == "messages":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._get(_pool_name(seg[2]), _parse_uint("seq", seg[4]), send, cors)
                if n == 4 and action == "tail":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._tail(_pool_name(seg[2]), scope, receive, send, cors, mode=_JSONL)
                if n == 4 and action == "append_lite3":
                    _expect(method, "POST")
                    self._require(read=False)
                    name = _pool_name(seg[2])
                    body = await _read_body(scope, receive, self.config.max_body_bytes)
                    return await self._append_lite3(name, body, scope, send, cors)
                if n == 6 and action == "messages" and seg[5] == "lite3":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._get_lite3(_pool_name(seg[2]), _parse_uint("seq", seg[4]), send, cors)
                if n == 4 and action == "tail_lite3":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._tail(_pool_name(seg[2]), scope, receive, send, cors, mode=_LITE3)
            elif n >= 3 and seg[1] == "ui" and seg[2] == "pools":
                if n == 3:
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._list(send, cors)
                if n == 5 and seg[4] == "info":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._info(_pool_name(seg[3]), send, cors)
                if n == 5 and seg[4] == "events":
                    _expect(method, "GET")
                    self._require(read=True)
                    return await self._tail(_pool_name(seg[3]), scope, receive, send, cors, mode=_SSE)
        elif n == 1 and seg[0] == "healthz":
            _expect(method, "GET", head=True)
            return await _send_json(send, b'{"ok":true}', 200, cors)
        elif n == 1 and seg[0] == "openapi.json":
            _expect(method, "GET", head=True)
            return await _send_json(send, self._openapi, 200, cors)
        elif (n == 1 and seg[0] == "ui") or (n == 3 and seg[0] == "ui" and seg[1] == "pools"):
            _expect(method, "GET", head=True)
            return await self._send_ui(send)
        elif n == 0:
            _expect(method, "GET", head=True)
            root = (scope.get("root_path") or "").rstrip("/")
            await send(
                {
                    "type": "http.response.start",
                    "status": 307,
                    "headers": [(b"location", (root + "/ui").encode()), (b"content-length", b"0"),
                                (b"plasmite-version", PROTOCOL_VERSION)],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        raise HttpError(
            NotFoundError(f"no such endpoint: {method} /{'/'.join(seg)}", hint="see /openapi.json for the endpoints"),
            404,
        )

    # ---- handlers

    def _info_dict(self, name: str, info) -> dict:
        data = info.to_dict()
        out = {"name": name}
        out.update({k: v for k, v in data.items() if k != "name"})
        return out

    async def _list(self, send, cors) -> None:
        def work():
            return [self._info_dict(info.name, info) for info in self.store.list()]

        pools = await self._storage(work)
        await _send_json(send, _json_encode({"pools": pools}), 200, cors)

    async def _create(self, body: bytes, send, cors) -> None:
        req = _decode_body(_create_decoder, body)
        name = _pool_name(req.pool)
        if req.size_bytes is not None and req.size_bytes <= 0:
            raise UsageError("size_bytes must be positive", hint="omit it for the 1 MiB default, or use e.g. 8388608")
        limit = getattr(self.config, "max_pool_bytes", 0)
        if limit and req.size_bytes is not None and req.size_bytes > limit:
            raise UsageError(
                f"size_bytes {req.size_bytes} exceeds this server's limit of {limit} bytes",
                hint="ask for a smaller pool, or start the server with a larger --max-pool-bytes",
            )

        def work():
            from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES

            size = req.size_bytes if req.size_bytes is not None else DEFAULT_POOL_SIZE_BYTES
            pool = self.store.create(name, size)
            try:
                return self._info_dict(name, pool.info())
            finally:
                pool.close()

        info = await self._storage(work)
        await _send_json(send, _json_encode({"pool": info}), 200, cors)

    async def _open(self, body: bytes, send, cors) -> None:
        req = _decode_body(_pool_decoder, body)
        await self._info(_pool_name(req.pool), send, cors)

    async def _info(self, name: str, send, cors) -> None:
        def work():
            if not self.store.exists(name):
                raise NotFoundError(f"pool not found: {name}", name, hint="create it first (POST /v0/pools) or check the name")
            return self._info_dict(name, self.store.info(name))

        info = await self._storage(work)
        await _send_json(send, _json_encode({"pool": info}), 200, cors)

    async def _delete(self, name: str, send, cors) -> None:
        self._evict(name)

        def work():
            if not self.store.exists(name):
                raise NotFoundError(f"pool not found: {name}", name, hint="check the name (GET /v0/pools lists pools)")
            self.store.delete(name)

        await self._storage(work)
        await _send_json(send, b'{"ok":true}', 200, cors)

    async def _append(self, name: str, body: bytes, send, cors) -> None:
        req = _decode_body(_append_decoder, body)
        durability = _durability(req.durability)
        tags = req.tags or ()
        data = bytes(req.data)
        await self._append_and_answer(name, data, tags, durability, send, cors)

    async def _append_and_answer(self, name: str, data: bytes, tags, durability, send, cors) -> None:
        """Append validated JSON data and answer with its envelope (JSON and Lite3 appends)."""
        if durability is Durability.FAST and not self.store.remote:
            # Fast path: a cached handle, a few microseconds under the pool lock.
            envelope = self._cached_pool(name).append_json(data, tags, durability)
        else:
            def work():
                if not self.store.exists(name):
                    raise NotFoundError(f"pool not found: {name}", name, hint="create it first (POST /v0/pools)")
                pool = self.store.open(name)
                try:
                    return pool.append_json(data, tags, durability)
                finally:
                    pool.close()

            envelope = await self._storage(work)
        await _send_json(send, b'{"message":' + envelope + b"}", 200, cors)

    async def _get(self, name: str, seq: int, send, cors) -> None:
        try:
            pool = self._cached_pool(name)
            envelope = await self._storage(pool.get_json, seq) if self.store.remote else pool.get_json(seq)
        except NotFoundError as exc:
            if exc.seq is None:
                exc.seq = seq
            raise
        await _send_json(send, b'{"message":' + envelope + b"}", 200, cors)

    # ---- Lite3 byte endpoints

    async def _append_lite3(self, name: str, body: bytes, scope, send, cors) -> None:
        ctype = _header(scope, b"content-type")
        if ctype is not None and not ctype.lower().startswith(LITE3_TYPE):
            raise UsageError(
                f"invalid content-type for a Lite3 append: {ctype.decode('latin-1')!r}",
                hint="send Content-Type: application/x-plasmite-lite3 (or POST JSON to /append)",
            )
        if not body:
            raise UsageError("lite3 payload is required", hint='send the Lite3 document of {"meta":{"tags":[...]},"data":{...}}')
        durability = Durability.FAST
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if key == "durability":
                durability = _durability(value)
        tags, data = _lite3_module().parse_message(body)  # Usage error when malformed
        await self._append_and_answer(name, data, tags, durability, send, cors)

    async def _get_lite3(self, name: str, seq: int, send, cors) -> None:
        encoder = _lite3_encoder()
        try:
            pool = self._cached_pool(name)
            message = await self._storage(pool.get, seq) if self.store.remote else pool.get(seq)
        except NotFoundError as exc:
            if exc.seq is None:
                exc.seq = seq
            raise
        payload = encoder(message).payload
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", LITE3_TYPE),
                    (b"content-length", str(len(payload)).encode()),
                    (b"plasmite-seq", str(message.seq).encode()),
                    (b"plasmite-time-ns", str(message.time_ns).encode()),
                    (b"plasmite-version", PROTOCOL_VERSION),
                ]
                + cors,
            }
        )
        await send({"type": "http.response.body", "body": payload})

    # ---- tail (JSON Lines) and UI events (SSE)

    def _tail_query(self, scope, sse: bool) -> _TailQuery:
        q = _TailQuery()
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if key == "since_seq":
                q.since_seq = _parse_uint("since_seq", value)
            elif key == "max":
                q.max = _parse_uint("max", value)
            elif key == "timeout_ms":
                q.timeout_ms = _parse_uint("timeout_ms", value)
            elif key in ("tag", "tags"):
                tag = value.strip()
                if tag:
                    q.tags.append(tag)
            elif key == "gap_policy":
                if value == "continue":
                    q.error_on_gap = False
                elif value == "error":
                    q.error_on_gap = True
                else:
                    raise UsageError(f"invalid gap_policy {value!r}", hint="use gap_policy=continue or gap_policy=error")
            elif key in ("last", "tail"):
                q.last = _parse_uint(key, value)
        if q.timeout_ms is not None and q.timeout_ms > self.config.max_tail_timeout_ms:
            raise UsageError(
                f"tail timeout_ms {q.timeout_ms} exceeds the server limit",
                hint=f"use timeout_ms <= {self.config.max_tail_timeout_ms} and reconnect with since_seq",
            )
        if sse and q.since_seq is None:
            for key, value in scope["headers"]:
                if key == b"last-event-id":
                    try:
                        q.since_seq = int(value) + 1
                    except ValueError:
                        pass
        if q.since_seq is not None:
            q.last = None
        return q

    async def _tail(self, name: str, scope, receive, send, cors, *, mode: int) -> None:
        sse = mode == _SSE
        lite3 = mode == _LITE3
        q = self._tail_query(scope, sse)
        encoder = None
        if lite3:
            if q.error_on_gap:
                raise UsageError(
                    "remote Lite3 tails do not support gap_policy=error: the byte stream has no error frame",
                    hint="use gap_policy=continue and check seq continuity, or the JSON Lines tail (/tail)",
                )
            encoder = _lite3_encoder()
        if not self._tail_admission.take():
            raise HttpError(
                BusyError("too many concurrent tail requests", hint="retry later, or raise --max-tail-concurrency"),
                423,
            )
        handle = None
        stream = None
        watcher = None
        waiter = None
        timeout_ms = q.timeout_ms if q.timeout_ms is not None else self.config.max_tail_timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000.0
        batch_messages = LITE3_BATCH_MESSAGES if lite3 else TAIL_BATCH_MESSAGES
        try:
            try:
                handle = self._handle(name)
                handle.refs += 1
                stream = _open_stream(handle.pool, q)
            except PlasmiteError as exc:
                raise HttpError(exc, exc.kind.http_status) from None
            if sse:
                headers = [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache, no-transform"),
                    (b"x-accel-buffering", b"no"),
                ]
            elif lite3:
                headers = [(b"content-type", LITE3_STREAM_TYPE), (b"cache-control", b"no-store"),
                           (b"x-accel-buffering", b"no")]
            else:
                headers = [(b"content-type", b"application/jsonl"), (b"cache-control", b"no-store"),
                           (b"x-accel-buffering", b"no")]
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": headers + [(b"plasmite-version", PROTOCOL_VERSION)] + cors,
                }
            )
            watcher = asyncio.ensure_future(_watch_disconnect(receive))
            sent = 0
            last_write = time.monotonic()
            pending: list = []
            while not watcher.done() and not self._closing:
                limit = batch_messages
                if q.max is not None:
                    limit = min(limit, q.max - sent)
                    if limit <= 0:
                        break
                # Take what is ready without waiting, on the loop: no thread hop per batch.
                try:
                    if lite3:
                        chunk, count = _drain_lite3(stream, limit, pending, encoder)
                    else:
                        batch = _drain(stream, limit, pending)
                        count = len(batch)
                        chunk = _frame(batch, sse) if batch else b""
                except PlasmiteError as exc:
                    if not lite3:  # a Lite3 stream has no error frame: it just ends
                        await _send_chunk(send, _terminal_error(exc, sse), more=True)
                    break
                pending = []
                if count:
                    sent += count
                    if not await _send_chunk(send, chunk, more=True):
                        break
                    last_write = time.monotonic()
                    await asyncio.sleep(0)  # let other requests run between batches
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Nothing ready: wait for the next message on the core's shared
                # per-pool waiter thread (one thread for all tails of a pool).
                wait_for = min(remaining, TAIL_RECHECK_S)
                if sse:
                    wait_for = min(wait_for, max(0.0, SSE_KEEPALIVE_S - (time.monotonic() - last_write)))
                waiter = asyncio.ensure_future(stream.anext())
                done, _ = await asyncio.wait({waiter, watcher}, timeout=wait_for, return_when=asyncio.FIRST_COMPLETED)
                if waiter in done:
                    w, waiter = waiter, None
                    try:
                        message = w.result()
                    except PlasmiteError as exc:
                        if not lite3:
                            await _send_chunk(send, _terminal_error(exc, sse), more=True)
                        break
                    if message is None:
                        break
                    pending = [message if lite3 else message.raw]
                    continue
                waiter.cancel()
                try:
                    await waiter
                except (asyncio.CancelledError, PlasmiteError):
                    pass
                waiter = None
                if sse and time.monotonic() - last_write >= SSE_KEEPALIVE_S:
                    if not await _send_chunk(send, b": keepalive\n\n", more=True):
                        break
                    last_write = time.monotonic()
            await _send_chunk(send, b"", more=False)
        finally:
            if waiter is not None:
                waiter.cancel()
            if watcher is not None:
                watcher.cancel()
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass
            if handle is not None:
                self._release(handle)
            self._tail_admission.give()

    # ---- UI

    async def _send_ui(self, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(self._ui_html)).encode()),
                    (b"cache-control", b"no-cache"),
                    (b"content-security-policy", self._ui_csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"plasmite-version", PROTOCOL_VERSION),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._ui_html})


# ---------------------------------------------------------------- utilities


def _open_stream(pool, q: _TailQuery):
    """A core Stream for the query; a since_seq already overwritten is RetentionGap (410) up front."""
    if q.error_on_gap and q.since_seq is not None:
        oldest, _newest = pool.bounds()
        if oldest is not None and q.since_seq < oldest:
            raise RetentionGapError(
                f"messages {q.since_seq}-{oldest - 1} are no longer retained; "
                f"the next available message is {oldest}",
                seq=q.since_seq,
                hint="inspect the pool bounds, then reopen the tail from an available seq",
            )
    kwargs: dict[str, Any] = {"error_on_gap": q.error_on_gap}
    if q.tags:
        kwargs["tags"] = list(q.tags)
    if q.since_seq is not None:
        kwargs["since_seq"] = q.since_seq
    elif q.last is not None:
        kwargs["last"] = q.last
    return pool.open_stream(**kwargs)


def _drain(stream, limit: int, batch: list[bytes]) -> list[bytes]:
    """Append to ``batch`` the envelopes available now (never waits), up to ``limit`` / 256 KiB."""
    size = sum(len(b) for b in batch)
    next_json = stream.next_json
    while len(batch) < limit and size < TAIL_BATCH_BYTES:
        raw = next_json(0)
        if raw is None:
            break
        batch.append(raw)
        size += len(raw)
    return batch


def _lite3_module():
    try:
        from plasmite_codecs import lite3
    except ImportError:
        raise HttpError(
            NotFoundError(
                "Lite3 byte endpoints need plasmite-codecs, which is not installed on this server",
                hint="pip install plasmite-codecs on the server, or use the JSON endpoints",
            ),
            404,
        ) from None
    return lite3


def _lite3_encoder() -> Callable:
    """message -> Lite3Frame, the core's own conversion (the bytes of Pool.get_lite3)."""
    codec = _lite3_module().Lite3Codec()
    from plasmite_core.lite3_frames import frame_of

    return lambda message: frame_of(message, codec)


def _drain_lite3(stream, limit: int, pending: list, encoder: Callable) -> tuple[bytes, int]:
    """Lite3 stream frames for the messages available now (never waits), as one write.

    ``[u64be seq][u64be time_ns][u32be len][payload]`` per message, up to
    ``limit`` messages or about 256 KiB; ``pending`` holds messages already
    taken from the stream. Polls in small steps so no message is taken that
    does not fit this write.
    """
    parts = []
    size = 0
    count = 0
    head = _frame_head
    messages = pending
    while True:
        for message in messages:
            payload = encoder(message).payload
            parts.append(head(message.seq, message.time_ns, len(payload)))
            parts.append(payload)
            size += 20 + len(payload)
        count += len(messages)
        if count >= limit or size >= TAIL_BATCH_BYTES:
            break
        messages = stream.poll(min(32, limit - count))
        if not messages:
            break
    return b"".join(parts), count


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _frame(batch: list[bytes], sse: bool) -> bytes:
    if sse:
        return b"".join(b"id: %d\nevent: message\ndata: %s\n\n" % (_seq_of(raw), raw) for raw in batch)
    batch.append(b"")
    return b"\n".join(batch)


def _terminal_error(exc: PlasmiteError, sse: bool) -> bytes:
    body = error_envelope(exc)
    if sse:
        return b"event: error\ndata: " + body + b"\n\n"
    return body + b"\n"


async def _watch_disconnect(receive) -> None:
    """Completes when the client goes away (the request body of a GET is empty)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_chunk(send, body: bytes, *, more: bool) -> bool:
    try:
        await send({"type": "http.response.body", "body": body, "more_body": more})
        return True
    except (OSError, RuntimeError):
        return False


async def _send_json(send, body: bytes, status: int, extra: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"plasmite-version", PROTOCOL_VERSION),
            ]
            + extra,
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, error: PlasmiteError, status: int, extra: list) -> None:
    try:
        await _send_json(send, error_envelope(error), status, extra)
    except (OSError, RuntimeError):
        pass  # response already started or client gone


async def _read_body(scope, receive, limit: int) -> bytes:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise UsageError("invalid Content-Length header") from None
            if declared > limit:
                raise HttpError(_too_large(limit), 413)
    chunks = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(UsageError("client disconnected"), 400)
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise HttpError(_too_large(limit), 413)
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _too_large(limit: int) -> PlasmiteError:
    return UsageError(
        f"request body exceeds the server limit of {limit} bytes",
        hint="send a smaller message; the operator sets the limit with --max-body-bytes",
    )


def _expect(method: str, allowed: str, head: bool = False) -> None:
    if method == allowed or (head and method == "HEAD"):
        return
    _method_not_allowed(method, allowed)


def _method_not_allowed(method: str, allowed: str) -> None:
    raise HttpError(
        UsageError(f"method {method} not allowed here", hint=f"use {allowed}"), 405,
        [(b"allow", allowed.encode())],
    )


def _segments(scope) -> list[str]:
    """Path segments after the mount point, each percent-decoded on its own.

    Splitting the raw path first keeps ``a%2Fb`` one segment, so a pool name
    with an encoded slash is refused as a name instead of routed elsewhere.
    """
    raw = scope.get("raw_path")
    if raw:
        text = raw.decode("latin-1").split("?", 1)[0]
    else:
        text = scope.get("path", "/")
    if "%" in text:
        parts = [unquote(p) for p in text.split("/") if p != ""]
    else:
        parts = [p for p in text.split("/") if p != ""]
    root = scope.get("root_path") or ""
    if root:
        root_parts = [p for p in root.split("/") if p]
        if parts[: len(root_parts)] == root_parts:
            parts = parts[len(root_parts):]
    return parts


def _load_ui() -> tuple[bytes, bytes]:
    html = resources.files("plasmite_serve").joinpath("static/index.html").read_bytes()
    hashes = []
    start = 0
    while True:
        open_at = html.find(b"<script>", start)
        if open_at < 0:
            break
        close_at = html.find(b"</script>", open_at)
        body = html[open_at + len(b"<script>") : close_at]
        hashes.append(b"'sha256-" + b64encode(hashlib.sha256(body).digest()) + b"'")
        start = close_at
    csp = (
        b"default-src 'none'; script-src " + b" ".join(hashes)
        + b"; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        b"form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


def create_app(config: ServeConfig | ResolvedConfig | None = None, **kwargs) -> PlasmiteApp:
    """Build the ASGI app from a :class:`ServeConfig` or its fields as keywords.

    ``create_app(pool_dir=..., token=..., access="read-only", cors_origins=[...])``.
    Validation is the same as ``pls serve``'s (it raises ``UsageError``), except
    that TLS belongs to the server running the app, not to the app.
    """
    if isinstance(config, ResolvedConfig):
        return PlasmiteApp(config)
    if config is None:
        config = ServeConfig(**kwargs)
    elif kwargs:
        raise TypeError("pass either a ServeConfig or keyword arguments, not both")
    return PlasmiteApp(resolve(config))


__all__ = ["PlasmiteApp", "create_app", "error_envelope"]
