"""Lite3 message frames for the API (upstream's ``append_lite3``/``get_lite3``).

A message's Lite3 form is the Lite3 document of ``{"meta":{"tags":[...]},"data":...}``,
whatever codec the pool stores: conversions go through the ``lite3`` codec
registered by plasmite-codecs, looked up only when these calls are used.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, NamedTuple

import msgspec

from .errors import UsageError
from .stream import Stream

_decode = msgspec.json.decode


class Lite3Frame(NamedTuple):
    seq: int
    timestamp_ns: int
    flags: int
    payload: bytes

    @property
    def time(self) -> datetime:
        sec, frac = divmod(self.timestamp_ns, 1_000_000_000)
        return datetime.fromtimestamp(sec, tz=timezone.utc).replace(microsecond=frac // 1000)


def lite3_codec():
    from . import plugins

    return plugins.codec("lite3")


def message_from_lite3(payload: bytes) -> tuple[Any, list[str]]:
    """(data, tags) of a Lite3 message document; Usage error when malformed."""
    if not isinstance(payload, (bytes, bytearray, memoryview)) or not payload:
        raise UsageError("lite3 payload must be non-empty bytes", hint="pass the bytes of a Lite3 document")
    # The codec checks upstream's rules (root, meta and data objects; meta.tags
    # an array of strings), as it does for the server's Lite3 endpoints.
    tags, data_json = lite3_codec().parse_message(bytes(payload))
    return _decode(data_json), tags


_sorted_encode = msgspec.json.Encoder(order="sorted").encode


def frame_of(message, codec=None) -> Lite3Frame:
    """The Lite3 frame of a stored message, byte-identical to upstream's: the
    envelope text has ``meta`` before ``data`` and object keys sorted (as
    serde_json writes them), then goes through the Lite3 JSON reader."""
    codec = codec or lite3_codec()
    doc = b'{"meta":{"tags":%s},"data":%s}' % (message.tags_json(), _sorted_encode(message.data))
    return Lite3Frame(message.seq, message.time_ns, 0, codec.from_json(doc))


class Lite3Stream:
    """A stream yielding ``Lite3Frame`` (same start, gap and timeout rules as Stream)."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._codec = lite3_codec()

    def next(self, timeout_ms: int | None = None) -> Lite3Frame | None:
        m = self._stream.next(timeout_ms)
        return None if m is None else frame_of(m, self._codec)

    def __iter__(self) -> Iterator[Lite3Frame]:
        return self

    def __next__(self) -> Lite3Frame:
        f = self.next()
        if f is None:
            raise StopIteration
        return f

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> "Lite3Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
