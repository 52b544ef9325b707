"""Remote pools over HTTP: ``RemoteClient`` / ``RemotePool`` / ``RemoteTail``.

The remote handles meet the contracts of ``plasmite_core.protocols`` (the
``TransportClient`` / ``PoolHandle`` / ``StreamHandle`` of the local engine),
plus the Lite3 calls ``append_lite3``, ``get_lite3``, ``open_lite3_stream``, so
code and the ``pls`` commands work the same on ``http(s)://host:port/POOL``.
``AsyncRemoteClient`` / ``AsyncRemotePool`` / ``AsyncRemoteTail`` are the
asyncio versions.

Three modules make the client: ``client_wire`` (requests, answers, errors and tail
resume state, without I/O), ``sync_client`` and ``async_client`` (the blocking
and asyncio shells). This module names the public API.

Errors are ``RemoteError``: a ``PlasmiteError`` that is also the subclass for
its kind (``except NotFoundError`` catches a remote 404), carrying the HTTP
``status``, the ``kind`` and the server's ``hint``.

A tail is at-least-once on the wire and exactly-once to the caller: it
resumes with ``since_seq`` after the server ends a stream (server timeout) or
the connection drops, and drops any seq it has already delivered.
"""

from __future__ import annotations

from .async_client import (
    AsyncRemoteClient,
    AsyncRemoteLite3Tail,
    AsyncRemotePool,
    AsyncRemoteTail,
)
from .sync_client import RemoteClient, RemoteLite3Tail, RemotePool, RemoteTail
from .client_wire import (
    DEFAULT_POOL_SIZE_BYTES,
    RemoteError,
    RemotePoolInfo,
    error_from_body,
    remote_error,
)

__all__ = [
    "DEFAULT_POOL_SIZE_BYTES",
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
