"""Plasma events: reading them from pool messages and Redis, type matching.

A Plasma event is ``{"meta": {"type": T}, "data": D}``. In a pool it is the
message data itself (``type_from="meta"``), or the message data is D and T is
the message's first tag (``type_from="tag"``). Matching is Plasma's: an event
of type ``a:b:c`` reaches subscribers of ``a``, ``a:b`` and ``a:b:c``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

HEARTBEAT = "heartbeat"
SEPARATOR = ":"


class BadEvent(ValueError):
    """Not a Plasma event (logged and skipped, never fatal)."""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Event:
    type: str
    data_json: str  # D as compact JSON text ("null" when absent)
    position: tuple[int, ...] = ()  # per followed pool, the last seq dispatched with this event
    _sse: tuple[str, bytes] | None = None
    _grpc: Any = None

    def sse_bytes(self, event_id: str) -> bytes:
        """The SSE frame, cached: live subscribers share one id and one encoding."""
        if self._sse is None or self._sse[0] != event_id:
            body = '{"meta":{"type":' + json.dumps(self.type, ensure_ascii=False) + '},"data":' + self.data_json + "}"
            self._sse = (event_id, f"id: {event_id}\ndata: {body}\n\n".encode())
        return self._sse[1]

    def grpc_payload(self):
        if self._grpc is None:
            from .stream_pb2 import EventType, Payload

            self._grpc = Payload(eventType=EventType(type=self.type), data=self.data_json)
        return self._grpc


def event_id(position: tuple[int, ...]) -> str:
    """SSE id: the pool seq, or per-pool seqs joined by '.' when following several."""
    return ".".join(str(s) for s in position)


def parse_event_id(text: str, pools: int) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if len(parts) != pools:
        return None
    try:
        out = tuple(int(p) for p in parts)
    except ValueError:
        return None
    return out if all(s >= 0 for s in out) else None


def from_plasma(value: Any) -> tuple[str, str]:
    """(type, data JSON) from a decoded Plasma payload, or BadEvent."""
    if not isinstance(value, dict):
        raise BadEvent("a Plasma event is a JSON object with meta.type and data")
    meta = value.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("type"), str) or not meta["type"]:
        raise BadEvent("meta.type must be a non-empty string")
    return meta["type"], _compact(value.get("data"))


def from_json_text(text: str | bytes) -> dict[str, Any]:
    """A Plasma payload as published on Redis, validated, as a dict to record."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    from_plasma(value)
    return {"meta": {"type": value["meta"]["type"]}, "data": value.get("data")}


def from_message(data: Any, tags: list[str] | None, type_from: str) -> tuple[str, str]:
    if type_from == "tag":
        if not tags:
            raise BadEvent("message has no tag to take the event type from")
        return tags[0], _compact(data)
    return from_plasma(data)


def type_keys(event_type: str) -> list[str]:
    """``a:b:c`` -> ``[a, a:b, a:b:c]``: the subscription keys an event reaches."""
    parts = event_type.split(SEPARATOR)
    return [SEPARATOR.join(parts[: i + 1]) for i in range(len(parts))]


def matches(event_type: str, subscribed: frozenset[str] | set[str]) -> bool:
    return any(k in subscribed for k in type_keys(event_type))
