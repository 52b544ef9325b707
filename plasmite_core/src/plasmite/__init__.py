"""Plasmite: persistent JSON message pools backed by plain files.

``from plasmite import Client, Durability`` — a drop-in for upstream's Python
binding, running on the pure-Python engine of ``plasmite_core``. Plugin authors find
here ``hookimpl``, ``Message`` and the contracts of ``plasmite_core.protocols``
(``TransportClient``, ``PoolHandle``, ``StreamHandle``, ``Capability``, ...). Remote pools
(``RemoteClient``) come from ``plasmite-serve`` when it is installed.
"""

from plasmite_core import __version__
from plasmite_core.appending import encode_batch, encode_message, encode_tagged, json_payload, require_object, tags_blob
from plasmite_core.client import (
    DEFAULT_POOL_SIZE,
    DEFAULT_POOL_SIZE_BYTES,
    Client,
    Durability,
    Pool,
    PoolInfo,
)
from plasmite_core.envelope import Message, MessageMeta, parse_message
from plasmite_core.errors import (
    AlreadyExistsError,
    BusyError,
    CorruptError,
    ErrorKind,
    InternalError,
    IoError,
    NotFoundError,
    PermissionDeniedError,
    PlasmiteError,
    RetentionGapError,
    ERROR_CLASSES as _ERROR_KIND_TO_CLASS,  # noqa: F401  (upstream's binding exposes this name)
    UsageError,
)
from plasmite_core.hooks import hookimpl
from plasmite_core.pacing import paced
from plasmite_core.protocols import (
    TRANSPORT_OPTIONS,
    Capability,
    Codec,
    FilterFactory,
    PoolHandle,
    PoolInfoLike,
    Predicate,
    StreamHandle,
    TransportClient,
    TransportFactory,
)
from plasmite_core.refs import default_pool_dir, validate_pool_name
from plasmite_core.stream import Stream
from plasmite_core.stream_base import BufferedStream, tag_matcher


def _message_has_tags(message: Message, tags) -> bool:
    """True when ``message`` carries every tag in ``tags``.

    Upstream's binding names this helper; as there, a tail or replay without
    a tag filter never calls it (local tails test tags on the raw frame).
    """
    have = message.tags
    return all(t in have for t in tags)


def __getattr__(name: str):
    # Remote and Lite3 names resolve lazily so `import plasmite` stays cheap
    # and works without the optional distributions.
    if name in ("RemoteClient", "RemotePool", "RemoteTail", "RemoteError"):
        try:
            import plasmite_serve.client as remote
        except ImportError as exc:
            raise AttributeError(f"{name} needs plasmite-serve: pip install plasmite-serve") from exc
        return getattr(remote, name)
    if name in ("Lite3Frame", "Lite3Stream"):
        from plasmite_core import lite3_frames

        return getattr(lite3_frames, name)
    if name == "DEFAULT_POOL_DIR":
        return str(default_pool_dir())
    raise AttributeError(f"module 'plasmite' has no attribute {name!r}")


__all__ = [
    "Client",
    "Pool",
    "PoolInfo",
    "Stream",
    "Lite3Frame",
    "Lite3Stream",
    "Message",
    "MessageMeta",
    "Durability",
    "ErrorKind",
    "PlasmiteError",
    "NotFoundError",
    "AlreadyExistsError",
    "BusyError",
    "PermissionDeniedError",
    "CorruptError",
    "IoError",
    "UsageError",
    "InternalError",
    "RetentionGapError",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POOL_SIZE_BYTES",
    "default_pool_dir",
    "validate_pool_name",
    "parse_message",
    "hookimpl",
    "paced",
    "tag_matcher",
    "BufferedStream",
    "encode_batch",
    "encode_message",
    "encode_tagged",
    "json_payload",
    "require_object",
    "tags_blob",
    "Capability",
    "Codec",
    "FilterFactory",
    "PoolHandle",
    "PoolInfoLike",
    "Predicate",
    "StreamHandle",
    "TransportClient",
    "TransportFactory",
    "TRANSPORT_OPTIONS",
    "__version__",
]
