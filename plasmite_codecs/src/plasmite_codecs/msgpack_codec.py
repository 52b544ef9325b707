"""The ``msgpack`` payload codec: compact binary payloads that still read back as JSON.

Packing uses the ``msgpack`` package (str and bytes kept apart); the JSON side
uses msgspec, so ``bytes`` values come out as base64 strings like Lite3's.
"""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec

from plasmite_core.errors import CorruptError, ErrorKind, UsageError

__all__ = ["MsgpackCodec", "encode", "decode", "to_json", "from_json"]

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


def encode(obj: Any) -> bytes:
    """A Python value to MessagePack bytes."""
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(
            ErrorKind.USAGE, f"cannot encode value as msgpack: {exc}",
            hint="values must be JSON-like: dict, list, str, int, float, bool, None or bytes",
        ) from None


class _ExtensionType(ValueError):
    pass


def _no_ext(code: int, data: bytes) -> Any:
    raise _ExtensionType(f"extension type {code} has no JSON form")


def decode(buf: bytes | bytearray | memoryview) -> Any:
    """MessagePack bytes (exactly one value, nothing after it) to a Python value.

    Payloads are JSON-like: extension types and non-string map keys are
    refused as corrupt (msgpack timestamps decode to ``msgpack.Timestamp``,
    which ``to_json`` then refuses).
    """
    try:
        return msgpack.unpackb(buf, raw=False, strict_map_key=True, ext_hook=_no_ext, timestamp=0)
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, ExtraData...
        raise CorruptError(
            ErrorKind.CORRUPT, f"invalid msgpack payload: {type(exc).__name__}: {exc}",
            hint="the payload is not a single well-formed msgpack value",
        ) from None


def to_json(buf: bytes | bytearray | memoryview) -> bytes:
    """MessagePack bytes to compact JSON text (bytes become base64 strings)."""
    value = decode(buf)
    try:
        return _json_encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CorruptError(
            ErrorKind.CORRUPT, f"msgpack payload has no JSON form: {exc}",
            hint="msgpack extension types and non-string keys cannot be shown as JSON",
        ) from None


def from_json(json_bytes: bytes | bytearray | memoryview | str) -> bytes:
    """JSON text to MessagePack bytes."""
    try:
        value = _json_decode(json_bytes)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise UsageError(ErrorKind.USAGE, f"invalid JSON: {exc}", hint="the input must be JSON text") from None
    return encode(value)


class MsgpackCodec:
    """The ``msgpack`` payload codec (see the plugin hooks)."""

    name = "msgpack"
    is_json = False
    encode = staticmethod(encode)
    decode = staticmethod(decode)
    to_json = staticmethod(to_json)
    from_json = staticmethod(from_json)

    def __repr__(self) -> str:
        return "<MsgpackCodec>"
