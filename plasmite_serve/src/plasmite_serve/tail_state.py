"""A remote tail's state without I/O: what to request, deliver, skip and when to retry.

A tail feeds received bytes to ``TailCore`` and asks it what to deliver,
where to resume and how long to back off; ``sync_client`` and
``async_client`` only move bytes, so both resume the same way.
"""

from __future__ import annotations

import struct
import time
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from plasmite_core.envelope import seq_of
from plasmite_core.errors import IoError, UsageError

from . import _http
from .client_wire import error_from_body

IDLE_RECONNECT_S = 120.0  # a tail with no bytes for this long is reconnected
MAX_RETRY_S = 30.0  # consecutive reconnect failures tolerated by a tail
_FRAME_HEAD = struct.Struct(">QQI")


def split_frames(pending: bytes, data: bytes) -> tuple[list, bytes]:
    """Complete ``[u64be seq][u64be time_ns][u32be len][payload]`` frames and the incomplete rest."""
    from plasmite_core.lite3_frames import Lite3Frame

    buf = pending + data if pending else data
    out = []
    pos = 0
    end = len(buf)
    unpack = _FRAME_HEAD.unpack_from
    while end - pos >= 20:
        seq, time_ns, length = unpack(buf, pos)
        if end - pos - 20 < length:
            break
        out.append(Lite3Frame(seq, time_ns, 0, bytes(buf[pos + 20 : pos + 20 + length])))
        pos += 20 + length
    return out, bytes(buf[pos:])


def no_lite3_gap_error(error_on_gap: bool) -> None:
    if error_on_gap:
        raise UsageError(
            "remote Lite3 tails do not support error_on_gap: the byte stream has no error frame",
            hint="use the JSON tail (open_stream / tail) with error_on_gap=True, or check seq continuity",
        )


# ---------------------------------------------------------------------- tails


class TailCore:
    """Everything a tail knows across reconnects, without I/O.

    The shell asks ``request()`` for the bytes to send, reports the answer
    with ``opened(status, body)``, feeds body bytes to ``feed``, takes items
    with ``take()``, and on a dropped connection calls ``dropped()`` and
    reconnects after ``Backoff`` delays while ``finished()`` is False.
    Delivery is exactly-once: a seq already delivered is skipped on resume.
    """

    def __init__(self, quoted: str, since_seq, max_messages, timeout_ms, error_on_gap, *, lite3: bool = False,
                 last: int | None = None, since_time_ns: int | None = None, tags: Iterable[str] | None = None,
                 on_gap: Callable[[int, int], Any] | None = None, where: Any = None) -> None:
        for label, v in (("since_seq", since_seq), ("max_messages", max_messages), ("timeout_ms", timeout_ms),
                         ("last", last)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise UsageError(f"{label} must be a non-negative integer, got {v!r}")
        if since_time_ns is not None:
            raise UsageError("remote streams cannot start at a time",
                             hint="use last=N or since_seq=N for remote pools")
        if where is not None:
            raise UsageError("remote streams take tags, not where= predicates",
                             hint="filter the messages on the client side")
        if isinstance(tags, str):
            raise UsageError("tags must be a list of strings, not one string", hint="use tags=['a']")
        if lite3:
            no_lite3_gap_error(error_on_gap)
        self.quoted = quoted
        self.lite3 = lite3
        self.expected: int | None = since_seq
        self.max = max_messages
        self.delivered = 0
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self.error_on_gap = error_on_gap
        self.last = last if since_seq is None else None
        self.tags = list(tags or ())
        self.on_gap = on_gap
        self.done = False
        self.timed_out = False
        self.connected = False  # a first connection failure is raised at once, later ones retried
        self.server_cap_ok = True  # False once the server refused our timeout_ms
        self._items: list = []
        self._index = 0
        self._pending = b""

    # -- requests
    def resolve_last(self, bounds: tuple[int | None, int | None]) -> None:
        if self.last is None:
            return
        oldest, newest = bounds
        if newest is not None:
            self.expected = max(oldest or 1, newest - self.last + 1)
        self.last = None

    def request(self, headers: bytes) -> bytes:
        q: list[tuple[str, str]] = []
        if self.expected is not None:
            q.append(("since_seq", str(self.expected)))
        if self.max is not None:
            q.append(("max", str(self.max - self.delivered)))
        if self.deadline is not None and self.server_cap_ok:
            left = max(0, int((self.deadline - time.monotonic()) * 1000))
            if left <= 30_000:
                q.append(("timeout_ms", str(left)))
        for t in self.tags:
            q.append(("tag", t))
        if self.error_on_gap:
            q.append(("gap_policy", "error"))
        endpoint = "tail_lite3" if self.lite3 else "tail"
        target = f"/v0/pools/{self.quoted}/{endpoint}" + ("?" + urlencode(q) if q else "")
        accept = b"Accept: application/x-plasmite-lite3-stream\r\n" if self.lite3 else b"Accept: application/jsonl\r\n"
        return _http.build_request("GET", target, headers, None, accept)

    def refused(self, status: int, body: bytes) -> bool:
        """The tail request was answered with an error: True to retry at once, else raises it."""
        err = error_from_body(status, body)
        if self.server_cap_ok and err.status == 400 and "timeout" in err.message and "limit" in err.message:
            self.server_cap_ok = False  # an upstream server caps timeout_ms; keep our own deadline
            return True
        raise err

    # -- delivery
    def feed(self, data: bytes) -> None:
        """Body bytes received: split them into items (lines or Lite3 frames)."""
        if self.lite3:
            self._items, self._pending = split_frames(self._pending, data)
        else:
            self._items, self._pending = _http.split_lines(self._pending, data)
        self._index = 0

    def take(self) -> Any:
        """The next item to deliver, or None when the received bytes hold no more."""
        items = self._items
        while self._index < len(items):
            item = items[self._index]
            self._index += 1
            if self.lite3:
                if self._accept(item.seq):
                    return item
                continue
            if not item.strip():
                continue
            if item.startswith(b'{"error"'):
                self.done = True
                raise error_from_body(None, item)
            if self._accept(seq_of(item)):
                return item
        return None

    def _accept(self, seq: int) -> bool:
        exp = self.expected
        if exp is not None:
            if seq < exp:
                return False
            if seq > exp and self.on_gap is not None and not self.tags:
                self.on_gap(exp, seq)
        self.expected = seq + 1
        self.delivered += 1
        if self.max is not None and self.delivered >= self.max:
            self.done = True
        return True

    def close(self) -> None:
        """End the tail: nothing more is delivered, received or not."""
        self.done = True
        self._items = []
        self._index = 0

    def dropped(self) -> None:
        """The connection ended: forget partial bytes (the resume re-sends them)."""
        self._pending = b""

    # -- time
    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def read_wait(self, call_deadline: float | None) -> float:
        """How long one read may block: idle limit, the stream's deadline, the call's."""
        waits = [IDLE_RECONNECT_S]
        left = self.remaining()
        if left is not None:
            waits.append(max(left, 0.0) + 0.5)
        if call_deadline is not None:
            waits.append(max(call_deadline - time.monotonic(), 0.0))
        return max(min(waits), 0.0005)

    def finished(self) -> bool:
        if self.done:
            return True
        if self.max is not None and self.delivered >= self.max:
            self.done = True
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.done = True
            self.timed_out = True
        return self.done


class Backoff:
    """Reconnect delays of a tail: 50 ms doubling to 2 s, for at most MAX_RETRY_S."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.delay = 0.05

    def reset(self) -> None:
        self.started = None
        self.delay = 0.05

    def next_delay(self, core: TailCore, err: IoError) -> float:
        """The pause before the next attempt; raises ``err`` when retrying is over."""
        if not core.connected:
            raise err  # the first connection fails fast, as a local stream's open does
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if now - self.started > MAX_RETRY_S:
            raise err
        delay = self.delay
        self.delay = min(self.delay * 2, 2.0)
        left = core.remaining()
        return min(delay, left) if left is not None and left > 0 else delay


class TailHandle:
    """What both tail shells share: the pool, the state, the backoff, the read-outs."""

    _lite3 = False  # True for the Lite3 frame streams

    def __init__(self, pool: Any, since_seq: int | None = None, max_messages: int | None = None,
                 timeout_ms: int | None = None, error_on_gap: bool = False, **options: Any) -> None:
        self.pool = pool
        self._core = TailCore(pool._quoted, since_seq, max_messages, timeout_ms, error_on_gap, lite3=self._lite3,
                              **options)
        self._backoff = Backoff()

    @property
    def timed_out(self) -> bool:
        return self._core.timed_out

    @property
    def position(self) -> int | None:
        """The next seq the tail expects (its resume checkpoint)."""
        return self._core.expected
