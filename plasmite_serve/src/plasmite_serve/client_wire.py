"""The remote protocol without I/O: requests, answers and errors.

``sync_client`` and ``async_client`` are thin shells around this module and
``tail_state``: they send the bytes a ``Call`` holds and hand the answer back
to ``Call.finish``, so both clients build the same requests and parse the
same answers.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import msgspec
from plasmite_core.durability import durability_name
from plasmite_core.appending import require_object
from plasmite_core.envelope import Message, parse_message, seq_of
from plasmite_core.errors import (
    ERROR_CLASSES,
    ErrorKind,
    IoError,
    PlasmiteError,
    UsageError,
)
from plasmite_core.refs import is_url

from . import _http

DEFAULT_POOL_SIZE_BYTES = 1024 * 1024
USER_AGENT = b"plasmite-python/0.1"
PIPELINE = 64  # requests in flight per append_many window
JSON_TYPE = b"Content-Type: application/json\r\n"
LITE3_TYPE = b"Content-Type: application/x-plasmite-lite3\r\n"

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


_REMOTE_CLASSES: dict[ErrorKind, type] = {
    kind: type("Remote" + cls.__name__, (RemoteError, cls), {"default_kind": kind, "__module__": "plasmite_serve.client"})
    for kind, cls in ERROR_CLASSES.items()
}

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


def closed_error(what: str) -> UsageError:
    return UsageError(f"{what} is closed", hint="open it again from a RemoteClient")


# ------------------------------------------------------------------ targets


class Target:
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
    return unquote(name)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError("pool name is empty", hint="name a pool, e.g. `demo`")
    if "/" in name or "\\" in name:
        raise UsageError(
            f"remote pool refs must be names, not paths: {name!r}",
            hint="path-based refs are local-only; use the pool's name",
        )
    return name


# --------------------------------------------------------------- pool info


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


# ------------------------------------------------------------------- calls


def _body(headers: dict, body: bytes) -> bytes:
    return body


def _message_raw(headers: dict, body: bytes) -> bytes:
    return bytes(_message_decoder.decode(body).message)


def _message(headers: dict, body: bytes) -> Message:
    return parse_message(_message_raw(headers, body))


def _pool_info(headers: dict, body: bytes) -> RemotePoolInfo:
    return RemotePoolInfo(_pool_decoder.decode(body).pool)


def _pool_infos(headers: dict, body: bytes) -> list[RemotePoolInfo]:
    return [RemotePoolInfo(p) for p in _pools_decoder.decode(body).pools]


def _healthy(headers: dict, body: bytes) -> bool:
    return msgspec.json.decode(body).get("ok") is True


def _lite3_seq(headers: dict, body: bytes) -> int:
    return seq_of(_message_raw(headers, body))


class Call(NamedTuple):
    """One request: the bytes to send and how to read the answer."""

    data: bytes
    retry_safe: bool
    parse: Callable[[dict, bytes], Any]
    seq: int | None = None  # set on NotFound errors that lack it
    forbidden_ok: bool = False  # a 403 answers None (open_pool on a write-only server)

    def finish(self, status: int, headers: dict, body: bytes) -> Any:
        """The result of the call, or the server's error raised with its kind."""
        if status == 200:
            return self.parse(headers, body)
        if status == 403 and self.forbidden_ok:
            return None
        err = error_from_body(status, body)
        if self.seq is not None and err.seq is None:
            err.seq = self.seq
        raise err


def encode_value(value: Any) -> bytes:
    """Message data as JSON; refused here, before any request, unless it is an object."""
    try:
        out = _enc(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise UsageError(f"message data is not JSON-serializable: {exc}",
                         hint="pass dicts, lists, strings, numbers, booleans or None") from None
    if out[:1] != b"{":
        require_object(value)
    return out


def append_body(payload: bytes, tags: Iterable[str] | None, durability: Any) -> bytes:
    if isinstance(tags, str):
        raise UsageError("tags must be a list of strings, not one string", hint="use tags=['a']")
    tag_list = [] if not tags else list(tags)
    return (b'{"data":' + payload + b',"tags":' + _enc(tag_list) + b',"durability":"'
            + durability_name(durability).encode() + b'"}')


def _json_payload(payload: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes (UTF-8 JSON), not {type(payload).__name__}; "
                        "use .encode() or append() for Python values")
    payload = bytes(payload)
    if not payload.strip():
        raise UsageError("payload is empty", hint="pass one JSON value, e.g. b'{}'")
    return payload


def lite3_body(payload: Any) -> bytes:
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes) or not payload:
        raise UsageError("lite3 payload must be non-empty bytes",
                         hint='pass the Lite3 document of {"meta":{"tags":[...]},"data":{...}}')
    return payload


def _check_seq(seq: Any) -> int:
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise UsageError(f"seq must be a non-negative integer, got {seq!r}")
    return seq


class Requests:
    """Builds every request of one client (target and auth headers fixed)."""

    def __init__(self, target: Target, token: str | None) -> None:
        self.target = target
        try:
            host_header = target.netloc.encode("ascii")
        except UnicodeEncodeError:
            host_header = target.netloc.encode("idna")
        headers = b"Host: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\n" % (host_header, USER_AGENT)
        if token:
            headers += b"Authorization: Bearer %s\r\n" % token.encode("latin-1")
        self.headers = headers

    def build(self, method: str, path: str, body: bytes | None = None, extra: bytes | None = None) -> bytes:
        if extra is None:
            extra = JSON_TYPE if body is not None else b""
        return _http.build_request(method, path, self.headers, body, extra)

    def name(self, ref: str | None) -> str:
        """The pool name of a ref: a name, a URL on this server, or None for the URL's pool."""
        if ref is None:
            if self.target.pool is None:
                raise UsageError("no pool named", hint="pass a pool name, or put it in the URL: http://host:port/POOL")
            return self.target.pool
        if is_url(ref):
            other = Target(ref)
            if other.base_url != self.target.base_url:
                raise UsageError(f"{ref} is on another server than {self.target.base_url}",
                                 hint="use a RemoteClient for that server")
            if other.pool is None:
                raise UsageError(f"no pool in {ref}", hint="use http(s)://host:port/POOL")
            return check_name(other.pool)
        return check_name(ref)

    # -- pools
    def create_pool(self, name: str, size_bytes: int, index_capacity: int | None, codec: str) -> Call:
        if codec != "json" or index_capacity is not None:
            raise UsageError("remote pools are created with the server's defaults (json codec, default index)",
                             hint="create such pools on the server with `pls pool create`")
        if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or size_bytes <= 0:
            raise UsageError(f"size_bytes must be a positive integer, got {size_bytes!r}", hint="e.g. 8 * 1024 * 1024")
        body = _enc({"pool": name, "size_bytes": size_bytes})
        return Call(self.build("POST", "/v0/pools", body), False, _pool_info)

    def open_pool(self, name: str) -> Call:
        return Call(self.build("POST", "/v0/pools/open", _enc({"pool": name})), True, _pool_info, forbidden_ok=True)

    def pool_info(self, name: str) -> Call:
        return Call(self.build("GET", f"/v0/pools/{quote(name, safe='')}/info"), True, _pool_info)

    def list_pools(self) -> Call:
        return Call(self.build("GET", "/v0/pools"), True, _pool_infos)

    def delete_pool(self, name: str) -> Call:
        return Call(self.build("DELETE", f"/v0/pools/{quote(name, safe='')}"), False, _body)

    def healthz(self) -> Call:
        return Call(self.build("GET", "/healthz"), True, _healthy)

    # -- messages
    def append_json(self, quoted: str, payload: bytes, tags: Iterable[str] | None, durability: Any) -> Call:
        body = append_body(_json_payload(payload), tags, durability)
        return Call(self.build("POST", f"/v0/pools/{quoted}/append", body), False, _message_raw)

    def append(self, quoted: str, value: Any, tags: Iterable[str] | None, durability: Any) -> Call:
        body = append_body(encode_value(value), tags, durability)
        return Call(self.build("POST", f"/v0/pools/{quoted}/append", body), False, _message)

    def append_many(self, quoted: str, values: Iterable[Any], tags: Iterable[str] | None,
                    durability: Any) -> list[bytes]:
        """The request bytes of each append of a batch (sent in windows of PIPELINE)."""
        tag_list = list(tags or ())
        path = f"/v0/pools/{quoted}/append"
        return [self.build("POST", path, append_body(encode_value(v), tag_list, durability)) for v in values]

    def get_json(self, quoted: str, seq: int) -> Call:
        seq = _check_seq(seq)
        return Call(self.build("GET", f"/v0/pools/{quoted}/messages/{seq}"), True, _message_raw, seq=seq)

    def get(self, quoted: str, seq: int) -> Call:
        seq = _check_seq(seq)
        return Call(self.build("GET", f"/v0/pools/{quoted}/messages/{seq}"), True, _message, seq=seq)

    def info(self, quoted: str) -> Call:
        return Call(self.build("GET", f"/v0/pools/{quoted}/info"), True, _pool_info)

    # -- Lite3 byte endpoints
    def append_lite3(self, quoted: str, payload: Any, durability: Any) -> Call:
        path = f"/v0/pools/{quoted}/append_lite3"
        if durability_name(durability) == "flush":
            path += "?durability=flush"
        return Call(self.build("POST", path, lite3_body(payload), LITE3_TYPE), False, _lite3_seq)

    def get_lite3(self, quoted: str, seq: int) -> Call:
        seq = _check_seq(seq)

        def frame(headers: dict, body: bytes):
            return lite3_frame_of(headers, body, seq)

        return Call(self.build("GET", f"/v0/pools/{quoted}/messages/{seq}/lite3", None,
                               b"Accept: application/x-plasmite-lite3\r\n"), True, frame, seq=seq)


class PoolAddress:
    """What both remote pool classes know: the name, its URL, the client's requests."""

    codec = "json"
    capabilities: frozenset[str] = frozenset()  # no optional Capability over HTTP

    def __init__(self, client: Any, name: str, info: RemotePoolInfo | None = None) -> None:
        self.client = client
        self.name = name
        self._info = info
        self._quoted = quote(name, safe="")
        self._closed = False

    @property
    def url(self) -> str:
        return f"{self.client.base_url}/{self.name}"

    @property
    def path(self) -> str:
        return self.url

    def _req(self) -> Requests:
        if self._closed:
            raise closed_error("pool")
        return self.client._requests


class Batch:
    """The answers of a pipelined ``append_many``: stored messages, first error."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.stored: list[bytes] = []
        self.first_error: RemoteError | None = None

    def answer(self, status: int, body: bytes) -> None:
        if status != 200:
            self.first_error = self.first_error or error_from_body(status, body)
        else:
            self.stored.append(_message_raw({}, body))

    def failed(self, exc: BaseException) -> PlasmiteError:
        """The error to raise when the connection failed mid-batch."""
        if isinstance(exc, PlasmiteError):
            return self._with_stored(exc)
        return self._with_stored(IoError(
            f"connection to {self.base_url} failed during a batch append: {exc}",
            hint=f"{len(self.stored)} messages of the batch were confirmed stored before the failure"))

    def check_window(self, expected: int) -> None:
        """Raise after a window: the first refused message, or a connection closed early."""
        if self.first_error is not None:
            raise self._with_stored(self.first_error)
        if len(self.stored) < expected:
            raise self._with_stored(IoError("the server closed the connection during a batch append",
                                            hint=f"{len(self.stored)} messages of the batch were confirmed stored"))

    def _with_stored(self, err: PlasmiteError) -> PlasmiteError:
        err.stored = [parse_message(raw) for raw in self.stored]  # type: ignore[attr-defined]
        return err

    def messages(self) -> list[Message]:
        return [parse_message(raw) for raw in self.stored]


# --------------------------------------------------------------------- Lite3


def lite3_frame_of(headers: dict, payload: bytes, seq: int):
    """A Lite3Frame from a ``messages/{seq}/lite3`` response; time None when the server sent none."""
    from plasmite_core.lite3_frames import Lite3Frame

    try:
        seq = int(headers.get("plasmite-seq", seq))
        t = headers.get("plasmite-time-ns")
        time_ns = None if t is None else int(t)
    except ValueError:
        raise IoError("invalid plasmite-seq / plasmite-time-ns header in a Lite3 response") from None
    return Lite3Frame(seq, time_ns, 0, payload)  # type: ignore[arg-type]  # None: the caller fills it in
