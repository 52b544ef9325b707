"""What every transport checks and encodes before it stores a message.

The local pool and transport plugins (plasmite-redis) store the same frames:
a tags blob and a JSON object payload. These helpers are their one
definition of valid tags, of "message data is a JSON object", and of the
encoded ``(tags_blob, payload)`` items a batch append stores; they raise the
Usage errors (with hints) that every transport reports alike. Public in
``plasmite`` for transport authors.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import msgspec

from .codecs import canonical_json, encode_json
from .errors import UsageError

_json_enc = msgspec.json.encode
_EMPTY = b""
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


def tags_blob(tags: Iterable[str] | None) -> bytes:
    """Tags as stored in a frame: empty for none, else a JSON array of strings."""
    if not tags:
        return _EMPTY
    if isinstance(tags, str):
        raise UsageError("tags must be a list of strings, not one string", hint="use tags=['a'] rather than tags='a'")
    tags = list(tags)
    for t in tags:
        if not isinstance(t, str):
            raise UsageError(f"tags must be strings, got {type(t).__name__}", hint="convert tags to str first")
        if not t:
            raise UsageError("tags must be non-empty strings")
    blob = _json_enc(tags)
    if len(blob) > 0xFFFF:
        raise UsageError("too many or too long tags (more than 64 KiB in all)", hint="keep tags short; put data in the payload")
    return blob


_KINDS = {list: "an array", tuple: "an array", str: "a string", bool: "a boolean", int: "a number",
          float: "a number", type(None): "null"}


def require_object(value: Any) -> None:
    """Refuse message data that is not a JSON object, as upstream does.

    Every message then has a Lite3 form and upstream clients sharing a pool
    can read it. Called only for values that are not plain dicts, so the
    append path pays one type test.
    """
    if isinstance(value, dict):
        return
    try:
        first = _json_enc(value)[:1]
    except Exception:  # unencodable: the encoder's own error is reported
        first = b""
    if first == b"{":  # msgspec Structs, dataclasses
        return
    kind = _KINDS.get(type(value), type(value).__name__)
    raise UsageError(
        f"message data must be a JSON object, got {kind}",
        hint='wrap the value in an object, e.g. {"value": [1, 2, 3]}',
    )


def encode_message(value: Any, tags: Iterable[str] | None, encode: Callable[[Any], bytes]) -> tuple[bytes, bytes]:
    """``(tags_blob, payload)`` of one value: ``encode`` is the pool's fast
    encoder; a value it refuses is re-encoded by ``encode_json`` for the Usage
    error and its hint."""
    try:
        payload = encode(value)
    except _ENCODE_ERRORS:
        payload = encode_json(value)  # raises the Usage error with its hint
    if type(value) is not dict:
        require_object(value)
    return tags_blob(tags) if tags else _EMPTY, payload


def encode_batch(values: Iterable[Any], tags: Iterable[str] | None,
                 encode: Callable[[Any], bytes] = encode_json) -> tuple[list, list[tuple[bytes, bytes]]]:
    """The values (as a list) and their ``(tags_blob, payload)`` items, all
    with the same tags; a bad value raises before anything is stored.
    ``encode`` is the pool's codec (JSON by default)."""
    tags_raw = tags_blob(tags) if tags else _EMPTY
    vals = list(values)
    for v in vals:
        if type(v) is not dict:
            require_object(v)
    return vals, [(tags_raw, encode(v)) for v in vals]


def encode_tagged(items: Iterable[tuple[Any, Iterable[str] | None]],
                  encode: Callable[[Any], bytes] = encode_json) -> tuple[list, list[tuple[bytes, bytes]]]:
    """``encode_batch`` for ``(value, tags)`` pairs, each with its own tags."""
    vals, encoded = [], []
    for v, tg in items:
        if type(v) is not dict:
            require_object(v)
        vals.append(v)
        encoded.append((tags_blob(tg) if tg else _EMPTY, encode(v)))
    return vals, encoded


def json_payload(payload: object) -> bytes:
    """The canonical compact form of a JSON object given as UTF-8 bytes.

    A ``str`` (or anything not bytes-like) is a TypeError, as in upstream's
    binding; empty input, invalid JSON or a value that is not an object are
    Usage errors."""
    if not isinstance(payload, bytes):
        if not isinstance(payload, (bytearray, memoryview)):
            raise TypeError(f"payload must be bytes (UTF-8 JSON), not {type(payload).__name__}; "
                            "use .encode() or append() for Python values")
        payload = bytes(payload)
    if not payload:
        raise UsageError("payload is empty", hint="pass one JSON object, e.g. b'{}'")
    data = canonical_json(payload)
    if data[:1] != b"{":
        require_object(msgspec.json.decode(data))
    return data


_DICT_ONLY = {dict}


def split_items(vals: list, tags: Iterable[str] | None, encode: Callable[[Any], bytes],
                split: Callable[[bytes, bytes, int], Sequence[tuple[bytes, bytes]] | None]
                ) -> Sequence[tuple[bytes, bytes]] | None:
    """The batch's ``(tags_blob, payload)`` items from one ``encode`` call over
    the whole list, cut by ``split`` (``jsonsplit.split_objects``); None when
    any value needs the per-value path, which raises the errors (values
    first, then tags) with their hints."""
    try:
        array = encode(vals)
        tags_raw = tags_blob(tags) if tags else _EMPTY
    except Exception:
        return None
    return split(array, tags_raw, len(vals))


def encode_values(vals: list, tags: Iterable[str] | None, encode: Callable[[Any], bytes],
                  checked: Callable[[Any], bytes]) -> list[tuple[bytes, bytes]]:
    """The per-value path of a batch: values checked to be objects, encoded
    by the pool's fast ``encode`` (a value it refuses is encoded again by
    ``checked`` for the Usage error and its hint), then the tags."""
    if set(map(type, vals)) - _DICT_ONLY:
        for v in vals:
            if type(v) is not dict:
                require_object(v)
    try:
        payloads = list(map(encode, vals))
    except Exception:
        payloads = [checked(v) for v in vals]  # raises the Usage error with its hint
    tags_raw = tags_blob(tags) if tags else _EMPTY
    return [(tags_raw, p) for p in payloads]
