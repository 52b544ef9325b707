"""The message envelope: ``{"seq","time","meta":{"tags"},"data"}``.

A ``Message`` is built straight from frame bytes and decodes lazily: code that
only forwards the JSON envelope (``pls follow``, HTTP tail) never builds the
payload's Python value, and code that only reads ``data`` never formats the
time.

Frames are checksummed, but a forged (or foreign) frame can carry a valid CRC
over bytes that are not valid for the codec. Every read of such bytes is a
Corrupt error naming the seq and, for frames read from a pool, the file and
offset. An envelope is assembled by concatenating the stored JSON, so before
that the payload is checked to be exactly one JSON value (a skip-parse, no
Python objects) and the tags an array of strings: a payload such as
``1},"x":{`` cannot change the envelope's structure.
"""

from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import CorruptError, PlasmiteError, UsageError
from .rfc3339 import second_bytes
from .speedups import compiled

_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode
_skip_value = msgspec.json.Decoder(msgspec.Raw).decode  # one JSON value, else DecodeError
_tags_decode = msgspec.json.Decoder(list[str]).decode
_lines_one_value = msgspec.json.Decoder(msgspec.Raw).decode_lines
_lines_tags = msgspec.json.Decoder(list[str]).decode_lines
_lines_any = msgspec.json.Decoder().decode_lines
_DecodeError = (msgspec.DecodeError, UnicodeDecodeError)


def _one_value(payload: bytes) -> None:
    """DecodeError/UnicodeDecodeError unless ``payload`` is exactly one JSON
    value in UTF-8 (the skip-parse does not check UTF-8 inside strings)."""
    _skip_value(payload)
    if not payload.isascii():
        payload.decode()

_ENVELOPE = b'{"seq":%d,"time":"%s.%09dZ","meta":{"tags":%s},"data":%s}'


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


_cmsg = compiled("_message")  # the compiled MessageFields, or None
if _cmsg is not None:
    _cmsg.configure(_json_decode, _skip_value, _tags_decode, _lines_any, _lines_one_value)
COMPILED = _cmsg is not None
_NO: Any = _cmsg.NO if _cmsg is not None else object()  # data not decoded yet


def stored_envelope(seq: int, time_ns: int, tags_raw: bytes, payload: bytes) -> bytes:
    """The envelope of JSON bytes this process has just validated and stored
    (no check: the append paths' receipts)."""
    sec, frac = divmod(time_ns, 1_000_000_000)
    return _ENVELOPE % (seq, second_bytes(sec), frac, tags_raw or b"[]", payload)


_payload_of = itemgetter(3)
_tags_of = itemgetter(2)


def check_frames(frames: list) -> int | None:
    """Index of the first ``(seq, time, tags, payload)`` frame of a JSON pool
    whose payload is not one JSON value or whose tags are not an array of
    strings; None when all are valid.

    One parse per batch: payloads joined by newlines must be exactly
    ``len(frames)`` lines (compact JSON holds no raw newline) of one value
    each; the per-frame search runs only after a failure.
    """
    n = len(frames)
    blob = b"\n".join(map(_payload_of, frames))
    try:
        ok = blob.count(b"\n") == n - 1 and len(_lines_one_value(blob)) == n
        if ok and not blob.isascii():
            blob.decode()
        ok = ok and _tags_ok(frames)
    except _DecodeError:
        ok = False
    if ok:
        return None
    for i, (_, _, tags_raw, payload) in enumerate(frames):
        if not payload or b"\n" in payload or (tags_raw and b"\n" in tags_raw):
            return i
        try:
            _one_value(payload)
            if tags_raw:
                _tags_decode(tags_raw)
        except _DecodeError:
            return i
    return None


def _tags_ok(frames: list) -> bool:
    """Every frame's tags (where it has any) are one array of strings; one parse."""
    tags = list(filter(None, map(_tags_of, frames)))
    if not tags:
        return True
    tblob = b"\n".join(tags)
    return tblob.count(b"\n") == len(tags) - 1 and len(_lines_tags(tblob)) == len(tags)


def decode_frames(frames: list) -> list | None:
    """The decoded payloads of ``frames`` when ``check_frames`` would find all
    of them valid, in one parse that both checks and decodes (UTF-8 included);
    None when any frame is not, so the caller takes the checked path."""
    n = len(frames)
    blob = b"\n".join(map(_payload_of, frames))
    tags = list(filter(None, map(_tags_of, frames)))
    tblob = b"\n".join(tags)
    if blob.count(b"\n") != n - 1 or tblob.count(b"\n") != max(len(tags) - 1, 0):
        return None  # a raw newline would shift the lines
    return decode_joined(blob, tblob, n, len(tags))


def decode_joined(payloads: bytes, tags: bytes, n: int, tagged: int) -> list | None:
    """The values of ``n`` payloads joined by newlines (``tags``: the
    ``tagged`` non-empty tag arrays, joined the same way) when every one is a
    single JSON value and every tag array a list of strings; None otherwise,
    so the caller takes the per-frame path (the compiled scan's ``Joined``)."""
    try:
        values = _lines_any(payloads)
        if len(values) != n or (tagged and len(_lines_tags(tags)) != tagged):
            return None
    except _DecodeError:
        return None
    return values


class _MessageFields:
    """A message's fields, its constructor and its two hot getters.

    The reference of the compiled ``plasmite_speedups._message.MessageFields``
    (same fields, same fast paths): each getter takes the common case (JSON
    codec, bytes that check out) and hands everything else, errors included,
    to ``Message._decode_data`` / ``Message._format_raw``.
    """

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

    @property
    def data(self) -> Any:
        d = self._data
        if d is _NO:
            if self._codec is None:
                try:
                    d = self._data = _json_decode(self._payload)
                    return d
                except Exception:
                    pass
            d = self._decode_data()  # type: ignore[attr-defined]
        return d

    @property
    def raw(self) -> bytes:
        r = self._raw
        if r is None:
            r = self._format_raw()  # type: ignore[attr-defined]
        return r


def build_messages_py(cls: type, frames: list, codec) -> list:
    """``cls(seq, time_ns, tags, payload, codec)`` of each frame."""
    return [cls(seq, t, tr, pl, codec) for seq, t, tr, pl in frames]


if TYPE_CHECKING or _cmsg is None:
    _Fields = _MessageFields
    build_messages = build_messages_py
else:
    _Fields = _cmsg.MessageFields
    build_messages = _cmsg.build


class Message(_Fields):
    """One committed message. ``raw`` is its compact JSON envelope (bytes).

    Messages read from a pool are instances of a per-pool subclass (see
    ``bound``) that names the pool file in Corrupt errors. The fields and the
    ``data``/``raw`` getters come from ``_MessageFields`` or its compiled twin.
    """

    __slots__ = ()
    _src = None  # the PoolFile frames were read from (set on ``bound`` subclasses)

    @classmethod
    def from_parts(cls, seq: int, time_ns: int, tags: list[str], data: Any) -> "Message":
        m = cls(seq, time_ns, b"", b"")
        m._tags = list(tags)
        m._data = data
        return m

    @classmethod
    def bound(cls, src) -> type["Message"]:
        """A subclass whose messages name ``src`` (a PoolFile) when their
        bytes turn out damaged; it costs nothing per message."""
        return type(cls.__name__, (cls,), {"__slots__": (), "_src": src, "__module__": cls.__module__})

    def _damaged(self, what: str, exc: BaseException) -> CorruptError:
        src = self._src
        if src is not None:
            return src.damaged_message(self.seq, f"{what} ({exc})")
        return CorruptError(
            f"message seq {self.seq}: {what} ({exc})", seq=self.seq,
            hint="the message's stored bytes are damaged; `pls doctor --deep` finds such messages",
        )

    def _decode_data(self) -> Any:
        """``data`` beyond the getter's fast path: other codecs, and the
        Corrupt error of bytes that do not decode."""
        codec = self._codec
        try:
            d = self._data = _json_decode(self._payload) if codec is None else codec.decode(self._payload)
        except PlasmiteError:
            raise
        except Exception as exc:  # any codec's decode failure: the bytes are damaged
            raise self._damaged(f"payload is not valid {'json' if codec is None else codec.name}", exc) from None
        return d

    @property
    def tags(self) -> list[str]:
        t = self._tags
        if t is None:
            if self._tags_raw:
                try:
                    t = self._tags = _tags_decode(self._tags_raw)
                except _DecodeError as exc:
                    raise self._damaged("tags are not a JSON array of strings", exc) from None
            else:
                t = self._tags = []
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
        """The payload as compact JSON text (checked to be one JSON value)."""
        codec = self._codec
        payload = self._payload
        if codec is None and payload:
            if self._data is _NO:
                try:
                    _one_value(payload)
                except _DecodeError as exc:
                    raise self._damaged("payload is not valid json", exc) from None
            return payload
        if codec is not None:
            try:
                return codec.to_json(payload)
            except PlasmiteError:
                raise
            except Exception as exc:
                raise self._damaged(f"payload is not valid {codec.name}", exc) from None
        return _json_encode(self.data)

    def tags_json(self) -> bytes:
        """The tags as a JSON array (stored tags are checked first)."""
        if self._tags_raw:
            if self._tags is None:
                self.tags  # noqa: B018 - decodes and checks them
            return self._tags_raw
        return b"[]" if self._tags is None else _json_encode(self._tags)

    def _format_raw(self) -> bytes:
        """The envelope, with the checks that make concatenation safe: stored
        tags decode as strings, the payload is one JSON value in UTF-8."""
        sec, frac = divmod(self.time_ns, 1_000_000_000)
        tags = self._tags_raw
        if not tags:
            tags = b"[]" if self._tags is None else _json_encode(self._tags)
        elif self._tags is None:
            self.tags  # noqa: B018 - decodes and checks them
        payload = self._payload
        if self._codec is None and payload:
            if self._data is _NO:
                try:
                    _skip_value(payload)  # inlined _one_value (hot path)
                    if not payload.isascii():
                        payload.decode()
                except _DecodeError as exc:
                    raise self._damaged("payload is not valid json", exc) from None
        else:
            payload = self.data_json()
        if b"\n" in payload or b"\n" in tags:
            # Stored JSON is compact: a raw newline (allowed around a JSON
            # value) would split the envelope's line in JSON Lines output.
            raise self._damaged("payload or tags hold a raw newline", ValueError("not compact JSON"))
        r = self._raw = _ENVELOPE % (self.seq, second_bytes(sec), frac, tags, payload)
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
