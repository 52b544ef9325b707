"""The written plugin contracts: what a plugin provides and what the CLI uses.

Everything outside the core reaches pools through these protocols. The local
engine (``plasmite_core.client``), the HTTP client (``plasmite_serve``) and any
third-party transport implement them; the CLI, the server and other plugins
call only what is written here. A transport proves it meets them by passing
the conformance kit, ``plasmite_core.testing``.

Optional abilities are declared, never probed: a pool handle carries
``capabilities``, a frozenset of the ``Capability`` names it supports, and a
caller checks membership before using the matching call or keyword.

Transport factories
-------------------
A plugin's ``register_transports(register)`` calls ``register(scheme,
factory)``. For a pool ref ``scheme://netloc/NAME`` the CLI calls::

    factory("scheme://netloc", **options)  ->  TransportClient

and then ``client.open_pool("NAME")``. ``options`` holds only what the user
gave, from this fixed set (``TRANSPORT_OPTIONS``):

``token: str``
    a bearer token (``--token``, or read from ``--token-file`` by the CLI)
``tls_ca: str``
    path of a PEM file of CA certificates to trust (``--tls-ca``)
``tls_skip_verify: bool``
    ``True`` to skip TLS certificate verification (``--tls-skip-verify``)

A factory that cannot honour an option raises ``UsageError`` naming it; it
never ignores one silently. Programs may pass further keywords of the
transport's own (``RemoteClient(url, timeout=5)``), the CLI never does.

Errors
------
Every failure is a ``PlasmiteError`` of one of the stable kinds (Usage,
NotFound, AlreadyExists, Busy, Permission, Corrupt, Io, Internal,
RetentionGap), raised as the subclass for the kind (``NotFoundError``, ...):
a missing pool or seq is NotFound (``err.seq`` set for a seq), creating an
existing pool AlreadyExists, an unreachable backend Io, a refused credential
Permission, ``error_on_gap`` RetentionGap with ``err.seq`` the first missing
seq, bad arguments (a negative seq, tags given as one string, a payload that
is not JSON, a call on a closed handle) Usage.
"""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Protocol,
    runtime_checkable,
)

from .envelope import Message

__all__ = [
    "TRANSPORT_OPTIONS",
    "Capability",
    "Codec",
    "FilterFactory",
    "PoolHandle",
    "PoolInfoLike",
    "Predicate",
    "StreamHandle",
    "TransportClient",
    "TransportFactory",
]

TRANSPORT_OPTIONS = frozenset({"token", "tls_ca", "tls_skip_verify"})


class Capability:
    """Names a pool handle may list in ``capabilities``."""

    #: ``pool.append_encoded([(tags_blob, payload), ...], durability) -> [(seq, time_ns)]``
    #: with payloads already in the pool's codec and ``tags_blob`` b"" or a
    #: JSON array of strings (the CLI's feed path for JSON pools).
    ENCODED_APPEND = "encoded_append"
    #: ``open_stream(since_time_ns=T)`` starts at the first message at or after T.
    SINCE_TIME = "since_time"
    #: ``open_stream(where=predicate)`` applies a ``Message`` predicate where the
    #: data lives (a server-side filter), after the gap rules.
    WHERE = "where"
    #: Reads never wait on a network: ``stream.next(0)`` returning None means
    #: every message committed before the call was seen. Without it a caller
    #: scanning history waits for the seq it knows to be newest.
    LOCAL_READS = "local_reads"
    #: ``stream.poll_json`` assembles envelopes in bulk without building
    #: ``Message`` objects (worth calling in a hot loop).
    JSON_BATCHES = "json_batches"


@runtime_checkable
class Codec(Protocol):
    """A payload codec (``register_codecs``): what a frame stores for ``data``."""

    name: str
    #: True when ``encode`` gives compact JSON text (payload bytes are the
    #: envelope's ``data`` as is); False for binary codecs.
    is_json: bool

    def encode(self, value: Any) -> bytes: ...

    def decode(self, payload: bytes) -> Any: ...

    def to_json(self, payload: bytes) -> bytes: ...

    def from_json(self, text: bytes) -> bytes: ...


@runtime_checkable
class Predicate(Protocol):
    """A compiled filter: ``predicate(message) -> bool``.

    With ``accepts_raw`` True it is called with the compact JSON envelope
    (``Message.raw``, bytes); otherwise with ``Message.to_dict()``.
    """

    accepts_raw: bool

    def __call__(self, message: Any) -> bool: ...


class FilterFactory(Protocol):
    """What ``register_filters`` registers: compiles an expression once.

    Raises ``UsageError`` (with a hint) for an invalid expression.
    """

    def __call__(self, expr: str) -> Predicate: ...


@runtime_checkable
class PoolInfoLike(Protocol):
    """Pool metadata; ``to_dict()`` is the upstream pool-info JSON shape."""

    name: str
    oldest_seq: int | None
    newest_seq: int | None
    message_count: int
    codec: str

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class StreamHandle(Protocol):
    """A cursor over one pool (``pool.open_stream``).

    Delivers messages in seq order, each at most once. ``next`` waits (until
    ``timeout_ms`` for this call, or the stream's own deadline/max); ``poll``
    and ``poll_json`` never wait and may return fewer than are committed.
    Gap rule: a seq above the expected one is a gap; it calls ``on_gap(first
    missing, resumed)`` or, with ``error_on_gap``, raises RetentionGap (``seq``
    = the first missing) once and ends the stream; a transport may raise it
    from ``open_stream`` already, as it may NotFound or Permission. After ``close()`` every read returns None / ``[]``.
    ``async for m in stream`` yields ``Message`` objects without blocking the
    event loop.
    """

    timed_out: bool

    @property
    def position(self) -> int | None: ...

    def next(self, timeout_ms: int | None = None) -> Message | None: ...

    def next_json(self, timeout_ms: int | None = None) -> bytes | None: ...

    def poll(self, limit: int | None = None) -> list[Message]: ...

    def poll_json(self, limit: int = 1024) -> list[bytes]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> None: ...

    def __aiter__(self) -> AsyncIterator[Message]: ...


@runtime_checkable
class PoolHandle(Protocol):
    """An open pool (``client.open_pool``).

    ``path`` labels the pool in notices (a file path or a URL). ``durability``
    is ``Durability.FAST`` (0) or ``Durability.FLUSH`` (1). Message data is a
    JSON object (anything else is a Usage error, as upstream); ``append_json``
    takes UTF-8 bytes (a ``str`` is a TypeError, as upstream's binding). ``open_stream``,
    ``tail`` and ``atail`` take ``last`` (the N newest, then live), ``tags``
    (all must be present), ``on_gap`` (a ``(first_missing, resumed)``
    callback) and, when declared in ``capabilities``, ``since_time_ns`` and
    ``where``; an undeclared keyword is refused with ``UsageError``.
    """

    name: str
    path: Any
    codec: str
    capabilities: frozenset[str]

    def append(self, value: Any, tags: Iterable[str] | None = None, durability: Any = 0) -> Message: ...

    def append_json(self, payload: bytes | bytearray | memoryview, tags: Iterable[str] = (),
                    durability: Any = 0) -> bytes: ...

    def append_many(self, values: Iterable[Any], tags: Iterable[str] | None = None,
                    durability: Any = 0) -> list[Message]: ...

    def get(self, seq: int) -> Message: ...

    def get_json(self, seq: int) -> bytes: ...

    def bounds(self) -> tuple[int | None, int | None]: ...

    def info(self) -> PoolInfoLike: ...

    def open_stream(self, since_seq: int | None = None, max_messages: int | None = None,
                    timeout_ms: int | None = None, error_on_gap: bool = False,
                    **options: Any) -> StreamHandle: ...

    def tail(self, since_seq: int | None = None, max_messages: int | None = None,
             timeout_ms: int | None = None, tags: Iterable[str] | None = None,
             error_on_gap: bool = False, **options: Any) -> Iterator[Message]: ...

    def atail(self, since_seq: int | None = None, max_messages: int | None = None,
              timeout_ms: int | None = None, tags: Iterable[str] | None = None,
              error_on_gap: bool = False, **options: Any) -> AsyncIterator[Message]: ...

    def replay(self, speed: float = 1.0, since_seq: int | None = None, max_messages: int | None = None,
               timeout_ms: int | None = None, tags: Iterable[str] | None = None,
               **options: Any) -> Iterator[Message]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> None: ...


@runtime_checkable
class TransportClient(Protocol):
    """The pools of one backend (the local ``Client``, ``RemoteClient``, ...).

    Refs are pool names (a transport may accept more, e.g. local paths).
    ``pool`` opens or creates, safe against a racing creator.
    ``create_pool`` refuses with Usage what the backend cannot honour (a codec,
    an index capacity) before creating anything.
    """

    def create_pool(self, pool_ref: Any, size_bytes: int = ..., *, index_capacity: int | None = None,
                    codec: str = "json") -> PoolHandle: ...

    def open_pool(self, pool_ref: Any) -> PoolHandle: ...

    def pool(self, pool_ref: Any, size_bytes: int = ...) -> PoolHandle: ...

    def pool_info(self, pool_ref: Any) -> PoolInfoLike: ...

    def list_pools(self) -> list[PoolInfoLike]: ...

    def delete_pool(self, pool_ref: Any) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> None: ...


#: ``factory(base_url, **options) -> TransportClient``; see the module docstring.
TransportFactory = Callable[..., TransportClient]
