"""What every pool stream shares: its options, the gap rule, deadlines, iteration.

The local stream and transport streams (for example plasmite-redis) derive
from ``BufferedStream``, so the start options, the retention-gap rule of
``protocols.StreamHandle`` and the iteration protocol are written once. A
subclass reads ahead into ``_buf`` and provides ``next(timeout_ms)`` (and
``anext()`` for ``async for``); ``StreamIteration`` alone serves a stream that
keeps no such buffer (the HTTP client's tail).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator

import msgspec

from .envelope import Message
from .errors import RetentionGapError, UsageError

_json_str = msgspec.json.encode
_json_decode = msgspec.json.decode


def tag_matcher(tags: Iterable[str] | None) -> Callable[[bytes], bool] | None:
    """Test tags on the raw tags blob, decoding it only on a likely match."""
    want = [t for t in (tags or [])]
    if not want:
        return None
    needles = [_json_str(t) for t in want]

    def match(tags_raw: bytes) -> bool:
        if not tags_raw:
            return False
        for n in needles:
            if n not in tags_raw:
                return False
        have = _json_decode(tags_raw)
        return all(t in have for t in want)

    return match


class StreamIteration:
    """``messages()``, ``for raw in stream`` and ``with`` over ``next`` and ``next_json``."""

    def next(self, timeout_ms: int | None = None) -> Message | None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        m = self.next(timeout_ms)
        return None if m is None else m.raw

    def messages(self) -> Iterator[Message]:
        while True:
            m = self.next()
            if m is None:
                return
            yield m

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        raw = self.next_json()
        if raw is None:
            raise StopIteration
        return raw

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_counts(**counts: int | None) -> None:
    """Start options that must be None or a non-negative integer."""
    for name, v in counts.items():
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise UsageError(f"{name} must be a non-negative integer, got {v!r}")


class BufferedStream(StreamIteration):
    """A stream that reads ahead into ``_buf`` and delivers through ``_pop``.

    ``_expected`` is the next seq it will deliver (None until the first raw
    message sets it); ``_GAP_LOST`` and ``_GAP_HINT`` word the retention-gap
    error for the transport's way of losing messages.
    """

    _GAP_LOST = "overwritten"
    _GAP_HINT = "resume from a newer seq, rebuild from another source, or read faster / use a larger pool"

    def __init__(
        self,
        since_seq: int | None,
        max_messages: int | None,
        timeout_ms: int | None,
        error_on_gap: bool,
        *,
        last: int | None,
        tags: Iterable[str] | None,
        where: Callable[[Message], bool] | None,
        on_gap: Callable[[int, int], Any] | None,
    ) -> None:
        check_counts(since_seq=since_seq, max_messages=max_messages, timeout_ms=timeout_ms, last=last)
        self._max = max_messages
        self._error_on_gap = error_on_gap
        self._on_gap = on_gap
        self._tags = tag_matcher(tags)
        self._where = where
        self._deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self._buf: deque = deque()
        self._delivered = 0
        self._done = False
        self._expected: int | None = since_seq
        self.timed_out = False

    def _gap(self, exp: int, seq: int) -> bool:
        """Raw ``seq`` came where ``exp`` was expected. True: the stream ends
        here (``error_on_gap``; ``_pop`` raises once the buffer before it is
        delivered); else ``on_gap`` is told and reading goes on."""
        if self._error_on_gap:
            self._buf.append((None, exp))
            self._expected = exp
            return True
        if self._on_gap is not None:
            self._on_gap(exp, seq)
        return False

    def _pop(self) -> Message:
        # Callers check _done first: a finished stream delivers nothing more.
        item = self._buf.popleft()
        if type(item) is tuple:
            self._done = True
            self._buf.clear()
            raise RetentionGapError(
                f"retention gap: messages from seq {item[1]} were {self._GAP_LOST} before they were read",
                seq=item[1],
                hint=self._GAP_HINT,
            )
        self._delivered += 1
        if self._max is not None and self._delivered >= self._max:
            self._done = True
        return item

    def _left(self, call_deadline: float | None) -> float | None:
        """Seconds left to wait (None: forever), 0 once the stream's deadline
        or the call's (``call_deadline``, monotonic) has passed."""
        left = None if self._deadline is None else self._deadline - time.monotonic()
        if call_deadline is not None:
            c = call_deadline - time.monotonic()
            left = c if left is None else min(left, c)
        return None if left is None else max(0.0, left)

    def _expire(self) -> None:
        """Nothing came in time: the stream ends if its own deadline passed."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.timed_out = True
            self._done = True

    def _wait_left(self, call_deadline: float | None) -> float | None:
        """``_left``, and at 0 (nothing more to wait for) ``_expire`` too."""
        left = self._left(call_deadline)
        if left == 0:
            self._expire()
        return left

    @property
    def position(self) -> int | None:
        """The seq of the next message this stream delivers (its resume
        checkpoint): the first one read ahead into the buffer, if any."""
        buf = self._buf
        if buf:
            first = buf[0]
            return first[1] if type(first) is tuple else first.seq
        return self._expected

    def close(self) -> None:
        self._done = True
        self._buf.clear()

    async def anext(self) -> Message | None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        m = await self.anext()
        if m is None:
            raise StopAsyncIteration
        return m
