"""Remote pools over HTTP: ``RemoteClient`` / ``RemotePool`` / ``RemoteTail``.

The remote handles mirror the local ``Client`` / ``Pool`` / ``Stream`` of
plasmite_core (``append``, ``append_json``, ``append_many``, ``get``,
``get_json``, ``info``, ``bounds``, ``open_stream``, ``tail``, ``atail``, and
the Lite3 calls ``append_lite3``, ``get_lite3``, ``open_lite3_stream``), so
code and the ``pls`` commands work the same on ``http(s)://host:port/POOL``.
``AsyncRemoteClient`` / ``AsyncRemotePool`` / ``AsyncRemoteTail`` are the
asyncio versions.

Errors are ``RemoteError``: a ``PlasmiteError`` that is also the subclass for
its kind (``except NotFoundError`` catches a remote 404), carrying the HTTP
``status``, the ``kind`` and the server's ``hint``.

A tail is at-least-once on the wire and exactly-once to the caller: it
resumes with ``since_seq`` after the server ends a stream (server timeout) or
the connection drops, and drops any seq it has already delivered.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, AsyncIterator, Iterable, Iterator
from urllib.parse import quote, urlencode, urlsplit

import msgspec

from plasmite_core.envelope import Message, parse_message
from plasmite_core.errors import (
    ERROR_CLASSES,
    ErrorKind,
    IoError,
    PlasmiteError,
    UsageError,
)

from . import _http

LITE3_TYPE = b"application/x-plasmite-lite3"
_FRAME_HEAD = struct.Struct(">QQI")

DEFAULT_POOL_SIZE_BYTES = 1024 * 1024
USER_AGENT = b"plasmite-python/0.1"
IDLE_RECONNECT_S = 120.0  # a tail with no bytes for this long is reconnected
MAX_RETRY_S = 30.0  # consecutive reconnect failures tolerated by a tail
PIPELINE = 64  # requests in flight per append_many window

_enc = msgspec.json.encode


class _MessageEnvelope(msgspec.Struct):
    message: msgspec.Raw


class _PoolEnvelope(msgspec.Struct):
    pool: dict


class _PoolsEnvelope(msgspec.Struct):
    pools: list[dict]


_message_decoder = msgspec.json.Decoder(_MessageEnvelope)
_pool_decoder = msgspec.json.Decoder(_PoolEnvelope)
_pools_decoder = msgspec.json.Decoder(_PoolsEnvelope)


# --------------------------------------------------------------------- errors


class RemoteError(PlasmiteError):
    """An error answered by a Plasmite server (or met talking to it)."""

    def __init__(self, message: str = "", path=None, seq=None, offset=None, *, kind: ErrorKind | None = None,
                 status: int | None = None, hint: str | None = None) -> None:
        kind = kind if kind is not None else self.default_kind
        super().__init__(kind, message, path, seq, offset, hint=hint)
        self.status = status

    def __repr__(self) -> str:
        return f"RemoteError({self.kind.label!r}, {self.message!r}, status={self.status!r})"


_REMOTE_CLASSES: dict[ErrorKind, type] = {}
for _kind, _cls in ERROR_CLASSES.items():
    _REMOTE_CLASSES[_kind] = type(
        "Remote" + _cls.__name__, (RemoteError, _cls), {"default_kind": _kind, "__module__": __name__}
    )

_STATUS_KINDS = {
    400: ErrorKind.USAGE, 401: ErrorKind.PERMISSION, 403: ErrorKind.PERMISSION, 404: ErrorKind.NOT_FOUND,
    405: ErrorKind.USAGE, 409: ErrorKind.ALREADY_EXISTS, 410: ErrorKind.RETENTION_GAP, 413: ErrorKind.USAGE,
    423: ErrorKind.BUSY,
}


def remote_error(kind: ErrorKind | str, message: str, *, status: int | None = None, hint: str | None = None,
                 path=None, seq=None, offset=None) -> RemoteError:
    if not isinstance(kind, ErrorKind):
        kind = ErrorKind.from_label(str(kind))
    cls = _REMOTE_CLASSES[kind]
    return cls(message, path, seq, offset, kind=kind, status=status, hint=hint)


def error_from_body(status: int | None, body: bytes) -> RemoteError:
    try:
        obj = msgspec.json.decode(body)
        err = obj["error"]
        if not isinstance(err, dict) or "kind" not in err:
            raise KeyError
    except Exception:
        kind = _STATUS_KINDS.get(status or 500, ErrorKind.INTERNAL)
        text = body[:200].decode("utf-8", "replace").strip()
        return remote_error(kind, f"remote error status {status}" + (f": {text}" if text else ""), status=status)
    return remote_error(
        err.get("kind", "Internal"), str(err.get("message") or f"remote error status {status}"),
        status=status, hint=err.get("hint"), path=err.get("path"), seq=err.get("seq"), offset=err.get("offset"),
    )


# ------------------------------------------------------------------ targets


class _Target:
    """A server base URL (scheme, host, port) plus an optional default pool."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise UsageError(f"invalid remote URL: {url!r}", hint="use http(s)://host:port or http(s)://host:port/POOL")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UsageError(f"remote URL scheme must be http or https: {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"invalid port in remote URL: {url!r}") from None
        if not parts.hostname:
            raise UsageError(f"remote URL has no host: {url!r}")
        if parts.query or parts.fragment:
            raise UsageError(f"remote URL must not have a query or fragment: {url!r}")
        self.scheme = scheme
        self.host = parts.hostname
        self.port = port or (443 if scheme == "https" else 80)
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        default_port = (scheme == "https" and self.port == 443) or (scheme == "http" and self.port == 80)
        self.netloc = host_text if default_port else f"{host_text}:{self.port}"
        self.base_url = f"{scheme}://{self.netloc}"
        self.pool = _pool_from_path(parts.path, url)


def _pool_from_path(path: str, url: str) -> str | None:
    segs = [s for s in path.split("/") if s]
    if not segs:
        if path not in ("", "/"):
            raise UsageError(f"invalid remote pool URL: {url!r}")
        return None
    if len(segs) == 1:
        name = segs[0]
    elif len(segs) == 3 and segs[0] == "v0" and segs[1] == "pools":
        name = segs[2]
    elif len(segs) == 2 and segs[0] in ("pools", "pool"):
        name = segs[1]
    else:
        raise UsageError(
            f"remote pool URL path must be /POOL: {url!r}",
            hint="use the shorthand http(s)://host:port/POOL (no API path, no trailing slash)",
        )
    if path.endswith("/"):
        raise UsageError(f"remote pool URL must not end with '/': {url!r}", hint="use http(s)://host:port/POOL")
    from urllib.parse import unquote

    return unquote(name)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError("pool name is empty", hint="name a pool, e.g. `demo`")
    if "/" in name or "\\" in name:
        raise UsageError(
            f"remote pool refs must be names, not paths: {name!r}",
            hint="path-based refs are local-only; use the pool's name",
        )
    return name


def _durability_text(durability) -> bytes:
    value = getattr(durability, "value", durability)
    if value in (0, "fast", None):
        return b"fast"
    if value in (1, "flush"):
        return b"flush"
    raise UsageError(f"invalid durability {durability!r}", hint="use Durability.FAST or Durability.FLUSH")


def _append_body(payload: bytes, tags, durability) -> bytes:
    tag_list = [] if not tags else list(tags)
    if isinstance(tags, str):
        raise UsageError("tags must be a list of strings, not one string", hint="use tags=['a']")
    return b'{"data":' + payload + b',"tags":' + _enc(tag_list) + b',"durability":"' + _durability_text(durability) + b'"}'


def _seq_of(raw: bytes) -> int:
    if raw.startswith(b'{"seq":'):
        end = raw.find(b",", 7)
        if end > 7:
            try:
                return int(raw[7:end])
            except ValueError:
                pass
    try:
        return int(msgspec.json.decode(raw)["seq"])
    except Exception:
        raise IoError(f"invalid message in tail stream: {raw[:80]!r}") from None


def _lite3_body(payload) -> bytes:
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes) or not payload:
        raise UsageError("lite3 payload must be non-empty bytes",
                         hint='pass the Lite3 document of {"meta":{"tags":[...]},"data":{...}}')
    return payload


def _lite3_append_target(path: str, durability) -> str:
    return path + ("?durability=flush" if _durability_text(durability) == b"flush" else "")


def _lite3_frame_of(headers: dict, payload: bytes, seq: int):
    """A Lite3Frame from a ``messages/{seq}/lite3`` response; time None when the server sent none."""
    from plasmite_core.lite3_frames import Lite3Frame

    try:
        seq = int(headers.get("plasmite-seq", seq))
        t = headers.get("plasmite-time-ns")
        time_ns = None if t is None else int(t)
    except ValueError:
        raise IoError("invalid plasmite-seq / plasmite-time-ns header in a Lite3 response") from None
    return Lite3Frame(seq, time_ns, 0, payload)


def _split_frames(pending: bytes, data: bytes) -> tuple[list, bytes]:
    """Complete ``[u64be seq][u64be time_ns][u32be len][payload]`` frames and the incomplete rest."""
    from plasmite_core.lite3_frames import Lite3Frame

    buf = pending + data if pending else data
    out = []
    pos = 0
    end = len(buf)
    unpack = _FRAME_HEAD.unpack_from
    while end - pos >= 20:
        seq, time_ns, length = unpack(buf, pos)
        if end - pos - 20 < length:
            break
        out.append(Lite3Frame(seq, time_ns, 0, bytes(buf[pos + 20 : pos + 20 + length])))
        pos += 20 + length
    return out, bytes(buf[pos:])


def _no_lite3_gap_error(error_on_gap: bool) -> None:
    if error_on_gap:
        raise UsageError(
            "remote Lite3 tails do not support error_on_gap: the byte stream has no error frame",
            hint="use the JSON tail (open_stream / tail) with error_on_gap=True, or check seq continuity",
        )


class RemotePoolInfo:
    """Pool metadata as the server reported it (attribute names as the local PoolInfo)."""

    def __init__(self, data: dict) -> None:
        self._data = data
        bounds = data.get("bounds") or {}
        metrics = data.get("metrics") or {}
        util = metrics.get("utilization") or {}
        self.name = data.get("name")
        self.path = data.get("path")
        self.file_size = data.get("file_size")
        self.index_offset = data.get("index_offset")
        self.index_capacity = data.get("index_capacity")
        self.index_size_bytes = data.get("index_size_bytes")
        self.ring_offset = data.get("ring_offset")
        self.ring_size = data.get("ring_size")
        self.oldest_seq = bounds.get("oldest")
        self.newest_seq = bounds.get("newest")
        self.message_count = metrics.get("message_count")
        self.used_bytes = util.get("used_bytes")
        self.free_bytes = util.get("free_bytes")
        self.codec = data.get("codec", "json")
        self.format_version = data.get("format_version")

    @property
    def bounds(self) -> dict:
        return {"oldest": self.oldest_seq, "newest": self.newest_seq}

    def to_dict(self) -> dict:
        return dict(self._data)

    def __repr__(self) -> str:
        return f"RemotePoolInfo(name={self.name!r}, bounds={self.bounds!r}, file_size={self.file_size!r})"


# -------------------------------------------------------------- sync client


class RemoteClient:
    """A client of one Plasmite server: ``RemoteClient("http://127.0.0.1:9700", token=...)``.

    The URL may name a pool (``http://host:9700/demo``); ``open_pool()`` then
    defaults to it. One keep-alive connection is shared (requests are
    serialized with a lock); each tail opens its own connection.
    """

    def __init__(self, url: str, *, token: str | None = None, token_file: str | None = None,
                 tls_ca: str | None = None, tls_skip_verify: bool = False, timeout: float = 30.0) -> None:
        self._target = _Target(url)
        if token is not None and token_file is not None:
            raise UsageError("give token or token_file, not both")
        if token_file is not None:
            from .config import read_token_file

            token = read_token_file(token_file)
        self.token = token
        self.timeout = timeout
        self._ssl = _http.make_ssl_context(tls_ca, tls_skip_verify) if self._target.scheme == "https" else None
        try:
            host_header = self._target.netloc.encode("ascii")
        except UnicodeEncodeError:
            host_header = self._target.netloc.encode("idna")
        headers = b"Host: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\n" % (host_header, USER_AGENT)
        if token:
            headers += b"Authorization: Bearer %s\r\n" % token.encode("latin-1")
        self._headers = headers
        self._conn: _http.SyncConnection | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self._target.base_url

    def _new_connection(self, read_timeout: float | None) -> _http.SyncConnection:
        return _http.SyncConnection(self._target.host, self._target.port, self._ssl, self._target.host,
                                    connect_timeout=min(self.timeout, 10.0), read_timeout=read_timeout)

    def _request(self, method: str, path: str, body: bytes | None = None, *, retry_safe: bool = True) -> bytes:
        data = _http.build_request(
            method, path, self._headers, body, b"Content-Type: application/json\r\n" if body is not None else b""
        )
        with self._lock:
            if self._conn is None:
                self._conn = self._new_connection(self.timeout)
            status, _headers, payload = self._conn.request(data, retry_safe=retry_safe)
        if status != 200:
            raise error_from_body(status, payload)
        return payload

    def _request_raw(self, method: str, path: str, body: bytes | None, extra: bytes, *,
                     retry_safe: bool = True) -> tuple[dict, bytes]:
        data = _http.build_request(method, path, self._headers, body, extra)
        with self._lock:
            if self._conn is None:
                self._conn = self._new_connection(self.timeout)
            status, headers, payload = self._conn.request(data, retry_safe=retry_safe)
        if status != 200:
            raise error_from_body(status, payload)
        return headers, payload

    def _name(self, ref: str | None) -> str:
        if ref is None:
            if self._target.pool is None:
                raise UsageError("no pool named", hint="pass a pool name, or put it in the URL: http://host:port/POOL")
            return self._target.pool
        if "://" in ref:
            target = _Target(ref)
            if target.base_url != self._target.base_url:
                raise UsageError(f"{ref} is on another server than {self._target.base_url}",
                                 hint="use a RemoteClient for that server")
            if target.pool is None:
                raise UsageError(f"no pool in {ref}", hint="use http(s)://host:port/POOL")
            return _check_name(target.pool)
        return _check_name(ref)

    # -- lifecycle
    def create_pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES, *,
                    index_capacity: int | None = None, codec: str = "json") -> "RemotePool":
        name = self._name(ref)
        if codec != "json" or index_capacity is not None:
            raise UsageError("remote pools are created with the server's defaults (json codec, default index)",
                             hint="create such pools on the server with `pls pool create`")
        body = _enc({"pool": name, "size_bytes": size_bytes})
        info = _pool_decoder.decode(self._request("POST", "/v0/pools", body, retry_safe=False)).pool
        return RemotePool(self, name, RemotePoolInfo(info))

    def open_pool(self, ref: str | None = None) -> "RemotePool":
        name = self._name(ref)
        try:
            info = _pool_decoder.decode(self._request("POST", "/v0/pools/open", _enc({"pool": name}))).pool
        except RemoteError as err:
            if err.status == 403:
                # A write-only server may not let us read pool info; appends can still work.
                return RemotePool(self, name, None)
            raise
        return RemotePool(self, name, RemotePoolInfo(info))

    def pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES) -> "RemotePool":
        try:
            return self.open_pool(ref)
        except RemoteError as err:
            if err.kind != ErrorKind.NOT_FOUND:
                raise
        try:
            return self.create_pool(ref, size_bytes)
        except RemoteError as err:
            if err.kind == ErrorKind.ALREADY_EXISTS:
                return self.open_pool(ref)
            raise

    def pool_info(self, ref: str | None = None) -> RemotePoolInfo:
        name = self._name(ref)
        return RemotePoolInfo(_pool_decoder.decode(self._request("GET", f"/v0/pools/{quote(name, safe='')}/info")).pool)

    def list_pools(self) -> list[RemotePoolInfo]:
        return [RemotePoolInfo(p) for p in _pools_decoder.decode(self._request("GET", "/v0/pools")).pools]

    def delete_pool(self, ref: str | None = None) -> None:
        name = self._name(ref)
        self._request("DELETE", f"/v0/pools/{quote(name, safe='')}", retry_safe=False)

    def healthz(self) -> bool:
        return msgspec.json.decode(self._request("GET", "/healthz")).get("ok") is True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "RemoteClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteClient({self.base_url!r})"


class RemotePool:
    """A pool on a server; the local ``Pool`` surface over HTTP."""

    codec = "json"

    def __init__(self, client: RemoteClient, name: str, info: RemotePoolInfo | None = None) -> None:
        self.client = client
        self.name = name
        self._info = info
        self._quoted = quote(name, safe="")

    @property
    def url(self) -> str:
        return f"{self.client.base_url}/{self.name}"

    @property
    def path(self) -> str:
        return self.url

    def _path(self, suffix: str) -> str:
        return f"/v0/pools/{self._quoted}/{suffix}"

    # -- writes
    def append_json(self, payload: bytes | str, tags: Iterable[str] = (), durability=0) -> bytes:
        """Append a JSON document given as text; returns the stored envelope (bytes)."""
        if isinstance(payload, str):
            payload = payload.encode()
        body = _append_body(bytes(payload), tags, durability)
        out = self.client._request("POST", self._path("append"), body, retry_safe=False)
        return bytes(_message_decoder.decode(out).message)

    def append(self, data: Any, tags: Iterable[str] | None = None, durability=0) -> Message:
        try:
            payload = _enc(data)
        except (TypeError, msgspec.EncodeError) as exc:
            raise UsageError(f"message data is not JSON-serializable: {exc}") from None
        return parse_message(self.append_json(payload, tags or (), durability))

    def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None, durability=0) -> list[Message]:
        """Append many messages, pipelining up to 64 requests on the connection.

        On a refused message the first error is raised after its window of 64
        was answered; the messages that were stored (before it, and after it in
        the same window) are on the error as ``err.stored`` (a list of Message).
        """
        tag_list = list(tags or ())
        bodies = []
        for value in values:
            try:
                bodies.append(_append_body(_enc(value), tag_list, durability))
            except (TypeError, msgspec.EncodeError) as exc:
                raise UsageError(f"message data is not JSON-serializable: {exc}") from None
        try:
            return [parse_message(raw) for raw in self._append_bodies(bodies)]
        except PlasmiteError as err:
            err.stored = [parse_message(raw) for raw in getattr(err, "stored", [])]  # type: ignore[attr-defined]
            raise

    def _append_bodies(self, bodies: list[bytes]) -> list[bytes]:
        client = self.client
        path = self._path("append")
        out: list[bytes] = []
        with client._lock:
            if client._conn is None:
                client._conn = client._new_connection(client.timeout)
            conn = client._conn
            for start in range(0, len(bodies), PIPELINE):
                window = bodies[start : start + PIPELINE]
                data = b"".join(
                    _http.build_request("POST", path, client._headers, b, b"Content-Type: application/json\r\n")
                    for b in window
                )
                first_error: RemoteError | None = None
                try:
                    conn.send_request(data)
                    for _ in window:
                        status, headers = conn.read_head()
                        body, keep = conn.read_body(headers)
                        if status != 200:
                            first_error = first_error or error_from_body(status, body)
                        else:
                            out.append(bytes(_message_decoder.decode(body).message))
                        if not keep:
                            conn.close()
                            break
                except (OSError, socket.timeout) as exc:
                    conn.close()
                    if isinstance(exc, PlasmiteError):
                        exc.stored = out  # type: ignore[attr-defined]
                        raise
                    err = IoError(f"connection to {client.base_url} failed during a batch append: {exc}",
                                  hint=f"{len(out)} messages of the batch were confirmed stored before the failure")
                    err.stored = out  # type: ignore[attr-defined]
                    raise err from None
                conn.last_used = time.monotonic()
                if first_error is not None:
                    first_error.stored = out  # type: ignore[attr-defined]
                    raise first_error
                if len(out) < start + len(window):
                    err = IoError("the server closed the connection during a batch append",
                                  hint=f"{len(out)} messages of the batch were confirmed stored")
                    err.stored = out  # type: ignore[attr-defined]
                    raise err
        return out

    # -- reads
    def get_json(self, seq: int) -> bytes:
        try:
            out = self.client._request("GET", self._path(f"messages/{int(seq)}"))
        except RemoteError as err:
            if err.seq is None:
                err.seq = seq
            raise
        return bytes(_message_decoder.decode(out).message)

    def get(self, seq: int) -> Message:
        return parse_message(self.get_json(seq))

    def info(self) -> RemotePoolInfo:
        self._info = RemotePoolInfo(_pool_decoder.decode(self.client._request("GET", self._path("info"))).pool)
        return self._info

    def bounds(self) -> tuple[int | None, int | None]:
        info = self.info()
        return info.oldest_seq, info.newest_seq

    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> "RemoteTail":
        """A stream like the local one: ``next_json()``, ``next()``, iteration.

        Keywords: ``last`` (the N newest, then live), ``tags``, ``on_gap``.
        """
        return RemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail(self, since_seq: int | None = None, max_messages: int | None = None, timeout_ms: int | None = None,
             tags: Iterable[str] | None = None, error_on_gap: bool = False, **options: Any) -> Iterator[Message]:
        stream = RemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options)
        try:
            yield from stream.messages()
        finally:
            stream.close()

    async def atail(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, tags: Iterable[str] | None = None, error_on_gap: bool = False,
                    **options: Any) -> AsyncIterator[Message]:
        """``async for`` over messages, on an asyncio connection of its own."""
        aclient = AsyncRemoteClient._from_sync(self.client)
        stream = AsyncRemoteTail(AsyncRemotePool(aclient, self.name), since_seq, max_messages, timeout_ms,
                                 error_on_gap, tags=tags, **options)
        try:
            while True:
                m = await stream.next()
                if m is None:
                    return
                yield m
        finally:
            await stream.aclose()

    # -- Lite3 byte endpoints
    def append_lite3(self, payload: bytes, durability=0) -> int:
        """Append a Lite3 message document ``{"meta":{"tags"},"data"}``; returns its seq."""
        _, out = self.client._request_raw(
            "POST", _lite3_append_target(self._path("append_lite3"), durability), _lite3_body(payload),
            b"Content-Type: application/x-plasmite-lite3\r\n", retry_safe=False)
        return _seq_of(bytes(_message_decoder.decode(out).message))

    def get_lite3(self, seq: int):
        """The message as a ``Lite3Frame`` (payload: the Lite3 document of meta + data)."""
        try:
            headers, payload = self.client._request_raw(
                "GET", self._path(f"messages/{int(seq)}/lite3"), None, b"Accept: application/x-plasmite-lite3\r\n")
        except RemoteError as err:
            if err.seq is None:
                err.seq = seq
            raise
        frame = _lite3_frame_of(headers, payload, seq)
        if frame.timestamp_ns is None:  # a server without the time header (upstream's)
            frame = frame._replace(timestamp_ns=self.get(frame.seq).time_ns)
        return frame

    def open_lite3_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                          timeout_ms: int | None = None, error_on_gap: bool = False,
                          **options: Any) -> "RemoteLite3Tail":
        """Like ``open_stream``, over ``tail_lite3``: ``next()`` and iteration give ``Lite3Frame``."""
        return RemoteLite3Tail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    def tail_lite3(self, since_seq: int | None = None, max_messages: int | None = None,
                   timeout_ms: int | None = None, tags: Iterable[str] | None = None, **options: Any) -> Iterator:
        """``Lite3Frame`` objects in seq order, waiting for new ones until max/timeout."""
        stream = RemoteLite3Tail(self, since_seq, max_messages, timeout_ms, tags=tags, **options)
        try:
            yield from stream
        finally:
            stream.close()

    def replay(self, *args: Any, **kwargs: Any):
        raise UsageError("replay is local-only", hint="use tail() on remote pools, or replay a local pool")

    def close(self) -> None:
        pass

    def __enter__(self) -> "RemotePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemotePool({self.url!r})"


# ----------------------------------------------------------------- tail core


class _TailState:
    """What a tail knows across reconnects: position, counts, deadline."""

    def __init__(self, since_seq, max_messages, timeout_ms, error_on_gap, last, since_time_ns, tags, on_gap,
                 where=None) -> None:
        for label, v in (("since_seq", since_seq), ("max_messages", max_messages), ("timeout_ms", timeout_ms),
                         ("last", last)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise UsageError(f"{label} must be a non-negative integer, got {v!r}")
        if since_time_ns is not None:
            raise UsageError("remote streams cannot start at a time",
                             hint="use last=N or since_seq=N for remote pools")
        if where is not None:
            raise UsageError("remote streams take tags, not where= predicates",
                             hint="filter the messages on the client side")
        if isinstance(tags, str):
            raise UsageError("tags must be a list of strings, not one string", hint="use tags=['a']")
        self.expected: int | None = since_seq
        self.max = max_messages
        self.delivered = 0
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self.error_on_gap = error_on_gap
        self.last = last if since_seq is None else None
        self.tags = [t for t in (tags or ())]
        self.on_gap = on_gap
        self.done = False
        self.timed_out = False
        self.server_cap_ok = True  # False once the server refused our timeout_ms

    def resolve_last(self, bounds: tuple[int | None, int | None]) -> None:
        if self.last is None:
            return
        oldest, newest = bounds
        if newest is not None:
            self.expected = max(oldest or 1, newest - self.last + 1)
        self.last = None

    def target(self, quoted: str, endpoint: str = "tail") -> str:
        q: list[tuple[str, str]] = []
        if self.expected is not None:
            q.append(("since_seq", str(self.expected)))
        if self.max is not None:
            q.append(("max", str(self.max - self.delivered)))
        if self.deadline is not None and self.server_cap_ok:
            left = max(0, int((self.deadline - time.monotonic()) * 1000))
            if left <= 30_000:
                q.append(("timeout_ms", str(left)))
        for t in self.tags:
            q.append(("tag", t))
        if self.error_on_gap:
            q.append(("gap_policy", "error"))
        return f"/v0/pools/{quoted}/{endpoint}" + ("?" + urlencode(q) if q else "")

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def accept(self, line: bytes) -> bool:
        """Whether to deliver this line (False for an already-delivered seq). Raises on an error line."""
        if line.startswith(b'{"error"'):
            self.done = True
            raise error_from_body(None, line)
        return self.accept_seq(_seq_of(line))

    def accept_seq(self, seq: int) -> bool:
        """Whether to deliver the message ``seq`` (False when already delivered)."""
        exp = self.expected
        if exp is not None:
            if seq < exp:
                return False
            if seq > exp and self.on_gap is not None and not self.tags:
                self.on_gap(exp, seq)
        self.expected = seq + 1
        self.delivered += 1
        if self.max is not None and self.delivered >= self.max:
            self.done = True
        return True

    def finished(self) -> bool:
        if self.done:
            return True
        if self.max is not None and self.delivered >= self.max:
            self.done = True
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.done = True
            self.timed_out = True
        return self.done


def _timeout_refused(err: RemoteError) -> bool:
    return err.status == 400 and "timeout" in err.message and "limit" in err.message


class RemoteTail:
    """A resumable JSON Lines tail: the local ``Stream`` surface over HTTP."""

    def __init__(self, pool: RemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, *, last: int | None = None,
                 since_time_ns: int | None = None, tags: Iterable[str] | None = None, on_gap=None,
                 where=None) -> None:
        self.pool = pool
        self._st = _TailState(since_seq, max_messages, timeout_ms, error_on_gap, last, since_time_ns, tags,
                              on_gap, where)
        self._conn: _http.SyncConnection | None = None
        self._body: _http.SyncBodyStream | None = None
        self._lines: list[bytes] = []
        self._index = 0
        self._pending = b""
        self._connected_once = False
        if self._st.last is not None:
            self._st.resolve_last(pool.bounds())
        self._open()  # errors such as NotFound or Permission surface here, as for a local stream

    @property
    def timed_out(self) -> bool:
        return self._st.timed_out

    @property
    def position(self) -> int | None:
        return self._st.expected

    def _open(self) -> None:
        st = self._st
        client = self.pool.client
        while True:
            conn = client._new_connection(IDLE_RECONNECT_S)
            data = _http.build_request("GET", st.target(self.pool._quoted, self._endpoint), client._headers, None,
                                       self._accept_header)
            try:
                conn.send_request(data)
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
                err = error_from_body(status, body)
                if st.server_cap_ok and _timeout_refused(err):
                    st.server_cap_ok = False
                    continue
                raise err
            self._conn = conn
            self._body = _http.SyncBodyStream(conn, headers)
            self._connected_once = True
            return

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._body = None
        self._pending = b""

    def _reconnect(self) -> bool:
        """Reopen after the server ended the stream or the connection failed; False when done."""
        started = time.monotonic()
        delay = 0.05
        while True:
            if self._st.finished():
                return False
            try:
                self._open()
                return True
            except RemoteError:
                raise
            except IoError:
                if time.monotonic() - started > MAX_RETRY_S:
                    raise
                left = self._st.remaining()
                time.sleep(min(delay, left) if left is not None and left > 0 else delay)
                delay = min(delay * 2, 2.0)

    _endpoint = "tail"
    _accept_header = b"Accept: application/jsonl\r\n"

    def _split(self, data: bytes) -> None:
        """Turn received body bytes into items (here: lines) to deliver."""
        self._lines, self._pending = _http.split_lines(self._pending, data)
        self._index = 0

    def _take(self, item) -> bool:
        return bool(item.strip()) and self._st.accept(item)

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        """The next envelope (bytes); None when the stream ended or ``timeout_ms`` passed."""
        return self._next_item(timeout_ms)

    def _next_item(self, timeout_ms: int | None = None):
        st = self._st
        call_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            while self._index < len(self._lines):
                line = self._lines[self._index]
                self._index += 1
                try:
                    ok = self._take(line)
                except RemoteError:
                    self._drop_connection()
                    raise
                if ok:
                    if st.done:
                        self._drop_connection()
                    return line
            if st.finished():
                self._drop_connection()
                return None
            if self._body is None:
                if not self._reconnect():
                    return None
                continue
            waits = [IDLE_RECONNECT_S]
            left = st.remaining()
            if left is not None:
                waits.append(max(left, 0.0) + 0.5)
            if call_deadline is not None:
                waits.append(max(call_deadline - time.monotonic(), 0.0))
            assert self._conn is not None
            self._conn.settimeout(max(min(waits), 0.0005))
            try:
                data = self._body.read_some()
            except socket.timeout:
                if call_deadline is not None and time.monotonic() >= call_deadline:
                    return None
                if st.finished():
                    self._drop_connection()
                    return None
                self._drop_connection()  # idle for too long: reconnect
                continue
            except PlasmiteError:
                self._drop_connection()
                continue
            except OSError:
                self._drop_connection()
                continue
            if data is None:
                # The server ended this response (its timeout or our max): resume if not done.
                self._drop_connection()
                continue
            self._split(data)

    def next(self, timeout_ms: int | None = None) -> Message | None:
        raw = self.next_json(timeout_ms)
        return None if raw is None else parse_message(raw)

    def messages(self) -> Iterator[Message]:
        while True:
            m = self.next()
            if m is None:
                return
            yield m

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        raw = self.next_json()
        if raw is None:
            raise StopIteration
        return raw

    def close(self) -> None:
        self._st.done = True
        self._drop_connection()

    def __enter__(self) -> "RemoteTail":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RemoteLite3Tail(RemoteTail):
    """A resumable ``tail_lite3`` stream: ``next()`` and iteration give ``Lite3Frame``.

    Frames are ``[u64be seq][u64be time_ns][u32be len][payload]``; the same
    resume and de-duplication rules as RemoteTail apply. ``gap_policy=error``
    does not exist for Lite3 streams (upstream refuses it too).
    """

    _endpoint = "tail_lite3"
    _accept_header = b"Accept: application/x-plasmite-lite3-stream\r\n"

    def __init__(self, pool: RemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> None:
        _no_lite3_gap_error(error_on_gap)
        super().__init__(pool, since_seq, max_messages, timeout_ms, False, **options)

    def _split(self, data: bytes) -> None:
        self._lines, self._pending = _split_frames(self._pending, data)
        self._index = 0

    def _take(self, frame) -> bool:
        return self._st.accept_seq(frame.seq)

    def next(self, timeout_ms: int | None = None):
        """The next ``Lite3Frame``; None when the stream ended or ``timeout_ms`` passed."""
        return self._next_item(timeout_ms)

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="use next(), or open_stream() for JSON")

    def messages(self):
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="iterate it, or use open_stream()")

    def __next__(self):
        frame = self._next_item()
        if frame is None:
            raise StopIteration
        return frame

    def __enter__(self) -> "RemoteLite3Tail":
        return self


# ------------------------------------------------------------- async client


class AsyncRemoteClient:
    """The asyncio client: same methods as RemoteClient, as coroutines."""

    def __init__(self, url: str, *, token: str | None = None, token_file: str | None = None,
                 tls_ca: str | None = None, tls_skip_verify: bool = False, timeout: float = 30.0) -> None:
        self._sync = RemoteClient(url, token=token, token_file=token_file, tls_ca=tls_ca,
                                  tls_skip_verify=tls_skip_verify, timeout=timeout)
        self._conn: _http.AsyncConnection | None = None
        self._lock = None

    @classmethod
    def _from_sync(cls, client: RemoteClient) -> "AsyncRemoteClient":
        self = cls.__new__(cls)
        self._sync = client
        self._conn = None
        self._lock = None
        return self

    @property
    def base_url(self) -> str:
        return self._sync.base_url

    def _new_connection(self, read_timeout: float | None) -> _http.AsyncConnection:
        t = self._sync._target
        return _http.AsyncConnection(t.host, t.port, self._sync._ssl, t.host,
                                     connect_timeout=min(self._sync.timeout, 10.0), read_timeout=read_timeout)

    async def _request(self, method: str, path: str, body: bytes | None = None, *, retry_safe: bool = True) -> bytes:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        data = _http.build_request(
            method, path, self._sync._headers, body,
            b"Content-Type: application/json\r\n" if body is not None else b"",
        )
        async with self._lock:
            if self._conn is None:
                self._conn = self._new_connection(self._sync.timeout)
            status, _headers, payload = await self._conn.request(data, retry_safe=retry_safe)
        if status != 200:
            raise error_from_body(status, payload)
        return payload

    async def _request_raw(self, method: str, path: str, body: bytes | None, extra: bytes, *,
                           retry_safe: bool = True) -> tuple[dict, bytes]:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        data = _http.build_request(method, path, self._sync._headers, body, extra)
        async with self._lock:
            if self._conn is None:
                self._conn = self._new_connection(self._sync.timeout)
            status, headers, payload = await self._conn.request(data, retry_safe=retry_safe)
        if status != 200:
            raise error_from_body(status, payload)
        return headers, payload

    async def create_pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES) -> "AsyncRemotePool":
        name = self._sync._name(ref)
        body = _enc({"pool": name, "size_bytes": size_bytes})
        info = _pool_decoder.decode(await self._request("POST", "/v0/pools", body, retry_safe=False)).pool
        return AsyncRemotePool(self, name, RemotePoolInfo(info))

    async def open_pool(self, ref: str | None = None) -> "AsyncRemotePool":
        name = self._sync._name(ref)
        try:
            info = _pool_decoder.decode(await self._request("POST", "/v0/pools/open", _enc({"pool": name}))).pool
        except RemoteError as err:
            if err.status == 403:
                return AsyncRemotePool(self, name, None)
            raise
        return AsyncRemotePool(self, name, RemotePoolInfo(info))

    async def pool(self, ref: str | None = None, size_bytes: int = DEFAULT_POOL_SIZE_BYTES) -> "AsyncRemotePool":
        try:
            return await self.open_pool(ref)
        except RemoteError as err:
            if err.kind != ErrorKind.NOT_FOUND:
                raise
        try:
            return await self.create_pool(ref, size_bytes)
        except RemoteError as err:
            if err.kind == ErrorKind.ALREADY_EXISTS:
                return await self.open_pool(ref)
            raise

    async def pool_info(self, ref: str | None = None) -> RemotePoolInfo:
        name = self._sync._name(ref)
        out = await self._request("GET", f"/v0/pools/{quote(name, safe='')}/info")
        return RemotePoolInfo(_pool_decoder.decode(out).pool)

    async def list_pools(self) -> list[RemotePoolInfo]:
        return [RemotePoolInfo(p) for p in _pools_decoder.decode(await self._request("GET", "/v0/pools")).pools]

    async def delete_pool(self, ref: str | None = None) -> None:
        name = self._sync._name(ref)
        await self._request("DELETE", f"/v0/pools/{quote(name, safe='')}", retry_safe=False)

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> "AsyncRemoteClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class AsyncRemotePool:
    codec = "json"

    def __init__(self, client: AsyncRemoteClient, name: str, info: RemotePoolInfo | None = None) -> None:
        self.client = client
        self.name = name
        self._info = info
        self._quoted = quote(name, safe="")

    @property
    def url(self) -> str:
        return f"{self.client.base_url}/{self.name}"

    def _path(self, suffix: str) -> str:
        return f"/v0/pools/{self._quoted}/{suffix}"

    async def append_json(self, payload: bytes | str, tags: Iterable[str] = (), durability=0) -> bytes:
        if isinstance(payload, str):
            payload = payload.encode()
        out = await self.client._request("POST", self._path("append"), _append_body(bytes(payload), tags, durability),
                                         retry_safe=False)
        return bytes(_message_decoder.decode(out).message)

    async def append(self, data: Any, tags: Iterable[str] | None = None, durability=0) -> Message:
        try:
            payload = _enc(data)
        except (TypeError, msgspec.EncodeError) as exc:
            raise UsageError(f"message data is not JSON-serializable: {exc}") from None
        return parse_message(await self.append_json(payload, tags or (), durability))

    async def get_json(self, seq: int) -> bytes:
        try:
            out = await self.client._request("GET", self._path(f"messages/{int(seq)}"))
        except RemoteError as err:
            if err.seq is None:
                err.seq = seq
            raise
        return bytes(_message_decoder.decode(out).message)

    async def get(self, seq: int) -> Message:
        return parse_message(await self.get_json(seq))

    async def info(self) -> RemotePoolInfo:
        self._info = RemotePoolInfo(_pool_decoder.decode(await self.client._request("GET", self._path("info"))).pool)
        return self._info

    async def bounds(self) -> tuple[int | None, int | None]:
        info = await self.info()
        return info.oldest_seq, info.newest_seq

    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> "AsyncRemoteTail":
        return AsyncRemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    async def tail(self, since_seq: int | None = None, max_messages: int | None = None,
                   timeout_ms: int | None = None, tags: Iterable[str] | None = None, error_on_gap: bool = False,
                   **options: Any) -> AsyncIterator[Message]:
        stream = AsyncRemoteTail(self, since_seq, max_messages, timeout_ms, error_on_gap, tags=tags, **options)
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
        _, out = await self.client._request_raw(
            "POST", _lite3_append_target(self._path("append_lite3"), durability), _lite3_body(payload),
            b"Content-Type: application/x-plasmite-lite3\r\n", retry_safe=False)
        return _seq_of(bytes(_message_decoder.decode(out).message))

    async def get_lite3(self, seq: int):
        try:
            headers, payload = await self.client._request_raw(
                "GET", self._path(f"messages/{int(seq)}/lite3"), None, b"Accept: application/x-plasmite-lite3\r\n")
        except RemoteError as err:
            if err.seq is None:
                err.seq = seq
            raise
        frame = _lite3_frame_of(headers, payload, seq)
        if frame.timestamp_ns is None:
            frame = frame._replace(timestamp_ns=(await self.get(frame.seq)).time_ns)
        return frame

    def open_lite3_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                          timeout_ms: int | None = None, error_on_gap: bool = False,
                          **options: Any) -> "AsyncRemoteLite3Tail":
        return AsyncRemoteLite3Tail(self, since_seq, max_messages, timeout_ms, error_on_gap, **options)

    async def tail_lite3(self, since_seq: int | None = None, max_messages: int | None = None,
                         timeout_ms: int | None = None, tags: Iterable[str] | None = None,
                         **options: Any) -> AsyncIterator:
        stream = AsyncRemoteLite3Tail(self, since_seq, max_messages, timeout_ms, tags=tags, **options)
        try:
            async for frame in stream:
                yield frame
        finally:
            await stream.aclose()

    def __repr__(self) -> str:
        return f"AsyncRemotePool({self.url!r})"


class AsyncRemoteTail:
    """``async for raw in tail`` yields envelopes (bytes); ``await tail.next()`` a Message."""

    def __init__(self, pool: AsyncRemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, *, last: int | None = None,
                 since_time_ns: int | None = None, tags: Iterable[str] | None = None, on_gap=None,
                 where=None) -> None:
        self.pool = pool
        self._st = _TailState(since_seq, max_messages, timeout_ms, error_on_gap, last, since_time_ns, tags,
                              on_gap, where)
        self._conn: _http.AsyncConnection | None = None
        self._chunks = None
        self._lines: list[bytes] = []
        self._index = 0
        self._pending = b""
        self._connected_once = False

    @property
    def timed_out(self) -> bool:
        return self._st.timed_out

    @property
    def position(self) -> int | None:
        return self._st.expected

    async def _open(self) -> None:
        st = self._st
        if st.last is not None:
            st.resolve_last(await self.pool.bounds())
        client = self.pool.client
        while True:
            conn = client._new_connection(IDLE_RECONNECT_S)
            await conn.connect()
            assert conn.writer is not None
            conn.writer.write(_http.build_request("GET", st.target(self.pool._quoted, self._endpoint),
                                                  client._sync._headers, None, self._accept_header))
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
                err = error_from_body(status, body)
                if st.server_cap_ok and _timeout_refused(err):
                    st.server_cap_ok = False
                    continue
                raise err
            self._conn = conn
            self._connected_once = True
            mode, _ = _http._framing(headers)
            if mode == "chunked":
                self._chunks = conn.iter_chunked()
            else:
                self._chunks = _read_to_eof(conn)
            return

    async def _drop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None
        self._chunks = None
        self._pending = b""

    _endpoint = "tail"
    _accept_header = b"Accept: application/jsonl\r\n"
    _split = RemoteTail._split
    _take = RemoteTail._take

    async def next_json(self) -> bytes | None:
        return await self._next_item()

    async def _next_item(self):
        import asyncio

        st = self._st
        started_fail = None
        while True:
            while self._index < len(self._lines):
                line = self._lines[self._index]
                self._index += 1
                try:
                    ok = self._take(line)
                except RemoteError:
                    await self._drop()
                    raise
                if ok:
                    if st.done:
                        await self._drop()
                    return line
            if st.finished():
                await self._drop()
                return None
            if self._chunks is None:
                try:
                    await self._open()
                    started_fail = None
                except RemoteError:
                    raise
                except IoError:
                    if not self._connected_once:
                        raise  # the first connection fails fast, like the sync tail
                    now = time.monotonic()
                    started_fail = started_fail or now
                    if now - started_fail > MAX_RETRY_S:
                        raise
                    await asyncio.sleep(0.1)
                    continue
            left = st.remaining()
            wait = IDLE_RECONNECT_S if left is None else min(IDLE_RECONNECT_S, max(left, 0.0) + 0.5)
            try:
                data = await asyncio.wait_for(self._chunks.__anext__(), wait)
            except StopAsyncIteration:
                await self._drop()
                continue
            except asyncio.TimeoutError:
                await self._drop()
                continue
            except (OSError, asyncio.IncompleteReadError):
                await self._drop()
                continue
            self._split(data)

    async def next(self) -> Message | None:
        raw = await self.next_json()
        return None if raw is None else parse_message(raw)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        raw = await self.next_json()
        if raw is None:
            raise StopAsyncIteration
        return raw

    async def aclose(self) -> None:
        self._st.done = True
        await self._drop()

    async def __aenter__(self) -> "AsyncRemoteTail":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class AsyncRemoteLite3Tail(AsyncRemoteTail):
    """The asyncio ``tail_lite3`` stream: ``await next()`` and ``async for`` give ``Lite3Frame``."""

    _endpoint = "tail_lite3"
    _accept_header = b"Accept: application/x-plasmite-lite3-stream\r\n"
    _split = RemoteLite3Tail._split
    _take = RemoteLite3Tail._take

    def __init__(self, pool: AsyncRemotePool, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> None:
        _no_lite3_gap_error(error_on_gap)
        super().__init__(pool, since_seq, max_messages, timeout_ms, False, **options)

    async def next(self):
        return await self._next_item()

    async def next_json(self) -> bytes | None:
        raise UsageError("a Lite3 stream yields Lite3Frame objects", hint="use next(), or open_stream() for JSON")

    async def __anext__(self):
        frame = await self._next_item()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def __aenter__(self) -> "AsyncRemoteLite3Tail":
        return self


async def _read_to_eof(conn: _http.AsyncConnection):
    assert conn.reader is not None
    while True:
        data = await conn.reader.read(_http.RECV)
        if not data:
            return
        yield data


__all__ = [
    "AsyncRemoteClient",
    "AsyncRemoteLite3Tail",
    "AsyncRemotePool",
    "AsyncRemoteTail",
    "RemoteClient",
    "RemoteError",
    "RemoteLite3Tail",
    "RemotePool",
    "RemotePoolInfo",
    "RemoteTail",
    "error_from_body",
    "remote_error",
]
