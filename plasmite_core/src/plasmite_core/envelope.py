"""The message envelope: ``{"seq","time","meta":{"tags"},"data"}``.

A ``Message`` is built straight from frame bytes and decodes lazily: code that
only forwards the JSON envelope (``pls follow``, HTTP tail) never parses the
payload, and code that only reads ``data`` never formats the time.
"""

from __future__ import annotations

import time as _time
from datetime import datetime, timezone
from typing import Any

import msgspec

from .errors import UsageError

_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode

# [second, its RFC 3339 text]: one cache for every envelope writer. Stream.poll_json
# reads it inline (a hot loop; test_poll_json_matches_message_envelopes keeps it equal).
_bsec_cache: list = [None, b""]
_ENVELOPE = b'{"seq":%d,"time":"%s.%09dZ","meta":{"tags":%s},"data":%s}'


def second_bytes(sec: int) -> bytes:
    """``YYYY-MM-DDTHH:MM:SS`` of a Unix second, cached for runs of messages in one second."""
    cache = _bsec_cache
    if cache[0] != sec:
        cache[1] = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(sec)).encode()
        cache[0] = sec
    return cache[1]


def format_rfc3339(time_ns: int) -> str:
    """RFC 3339 UTC with nanoseconds: ``2026-01-02T03:04:05.123456789Z``."""
    sec, frac = divmod(time_ns, 1_000_000_000)
    return f"{second_bytes(sec).decode()}.{frac:09d}Z"


def parse_rfc3339(text: str) -> int:
    """Parse RFC 3339 text to integer nanoseconds since the epoch (UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    frac_ns = 0
    # datetime only keeps microseconds: split off the fraction ourselves.
    if "." in raw:
        head, rest = raw.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        raw = head + rest
    try:
        dt = datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError as exc:
        raise UsageError(
            f"invalid RFC 3339 time: {text!r}", hint="use e.g. 2026-01-02T03:04:05Z"
        ) from exc
    if dt.tzinfo is None:
        raise UsageError(f"time needs a timezone: {text!r}", hint="append Z for UTC")
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


class MessageMeta:
    __slots__ = ("tags",)

    def __init__(self, tags: list[str]) -> None:
        self.tags = tags

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MessageMeta) and other.tags == self.tags

    def __repr__(self) -> str:
        return f"MessageMeta(tags={self.tags!r})"


_NO = object()


class Message:
    """One committed message. ``raw`` is its compact JSON envelope (bytes)."""

    __slots__ = ("seq", "time_ns", "_tags_raw", "_payload", "_codec", "_data", "_tags", "_raw")

    def __init__(self, seq: int, time_ns: int, tags_raw: bytes, payload: bytes, codec=None, data: Any = _NO) -> None:
        self.seq = seq
        self.time_ns = time_ns
        self._tags_raw = tags_raw
        self._payload = payload
        self._codec = codec
        self._data = data
        self._tags: list[str] | None = None
        self._raw: bytes | None = None

    @classmethod
    def from_parts(cls, seq: int, time_ns: int, tags: list[str], data: Any) -> "Message":
        m = cls(seq, time_ns, b"", b"")
        m._tags = list(tags)
        m._data = data
        return m

    @property
    def data(self) -> Any:
        d = self._data
        if d is _NO:
            codec = self._codec
            d = self._data = _json_decode(self._payload) if codec is None else codec.decode(self._payload)
        return d

    @property
    def tags(self) -> list[str]:
        t = self._tags
        if t is None:
            t = self._tags = _json_decode(self._tags_raw) if self._tags_raw else []
        return t

    @property
    def meta(self) -> MessageMeta:
        return MessageMeta(self.tags)

    @property
    def time(self) -> datetime:
        sec, frac = divmod(self.time_ns, 1_000_000_000)
        return datetime.fromtimestamp(sec, tz=timezone.utc).replace(microsecond=frac // 1000)

    @property
    def time_rfc3339(self) -> str:
        return format_rfc3339(self.time_ns)

    def data_json(self) -> bytes:
        """The payload as compact JSON text."""
        if self._codec is None and self._payload:
            return self._payload
        if self._codec is not None:
            return self._codec.to_json(self._payload)
        return _json_encode(self.data)

    def tags_json(self) -> bytes:
        if self._tags is not None and not self._tags_raw:
            return _json_encode(self._tags)
        return self._tags_raw or b"[]"

    @property
    def raw(self) -> bytes:
        r = self._raw
        if r is None:
            sec, frac = divmod(self.time_ns, 1_000_000_000)
            payload = self._payload
            data = payload if (self._codec is None and payload) else self.data_json()
            tags = self._tags_raw or (b"[]" if self._tags is None else self.tags_json())
            r = self._raw = _ENVELOPE % (self.seq, second_bytes(sec), frac, tags, data)
        return r

    def receipt(self) -> bytes:
        """The feed receipt: the envelope without ``data``."""
        return b'{"seq":%d,"time":"%s","meta":{"tags":%s}}' % (
            self.seq, format_rfc3339(self.time_ns).encode(), self.tags_json(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time_rfc3339, "meta": {"tags": list(self.tags)}, "data": self.data}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Message)
            and other.seq == self.seq
            and other.time_ns == self.time_ns
            and other.tags == self.tags
            and other.data == self.data
        )

    def __repr__(self) -> str:
        return f"Message(seq={self.seq}, time={self.time_rfc3339!r}, tags={self.tags!r}, data={self.data!r})"


def seq_of(raw: bytes) -> int:
    """The seq of an envelope, read from the compact form's prefix without decoding."""
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
        raise UsageError(f"not a message envelope: {bytes(raw[:80])!r}") from None


def parse_message(payload: bytes | bytearray | memoryview | str) -> Message:
    """Parse a JSON envelope (as returned by ``get_json``) into a Message."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    try:
        obj = _json_decode(raw)
    except msgspec.DecodeError as exc:
        raise UsageError(f"invalid message envelope: {exc}", hint="pass the bytes returned by get_json/next_json") from exc
    if not isinstance(obj, dict):
        raise UsageError("message envelope must be a JSON object")
    seq = obj.get("seq")
    t = obj.get("time")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise UsageError("message seq must be an integer")
    if not isinstance(t, str):
        raise UsageError("message time must be an RFC 3339 string")
    meta = obj.get("meta")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    if not isinstance(tags, list):
        tags = []
    m = Message.from_parts(seq, parse_rfc3339(t), [str(x) for x in tags], obj.get("data"))
    m._raw = raw
    return m
