"""Tails over a pool: start position, ordering, retention gaps, waiting.

Gap rule (upstream API spec v0): the stream tracks the next expected seq. An
explicit ``since_seq`` sets it; otherwise the first raw message does. Every raw
message advances it *before* any filter runs, so filters cannot hide a gap. A
raw seq above the expected one is a gap: the default policy reports it (via
``on_gap``) and continues; ``error_on_gap`` raises ``RetentionGapError`` with
the first missing seq instead of delivering the next message, and ends the
stream. A raw seq below the expected one was already observed and is skipped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

import msgspec

from .envelope import Message, check_frames
from .errors import PlasmiteError, RetentionGapError, UsageError
from .framescan import envelopes
from .stream_base import BufferedStream

_json_str = msgspec.json.encode
_json_decode = msgspec.json.decode
_BATCH = 512
_GAP = object()


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


class Stream(BufferedStream):
    """A cursor over one pool. Blocking ``next*`` calls wait for new messages."""

    def __init__(
        self,
        pool,
        since_seq: int | None = None,
        max_messages: int | None = None,
        timeout_ms: int | None = None,
        error_on_gap: bool = False,
        *,
        last: int | None = None,
        since_time_ns: int | None = None,
        tags: Iterable[str] | None = None,
        where: Callable[[Message], bool] | None = None,
        on_gap: Callable[[int, int], Any] | None = None,
    ) -> None:
        for name, v in (("since_seq", since_seq), ("max_messages", max_messages), ("timeout_ms", timeout_ms), ("last", last)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise UsageError(f"{name} must be a non-negative integer, got {v!r}")
        self._pool = pool
        pf = self._pf = pool._file()
        self._codec = pool._payload_codec
        self._message = pool._message
        self._error: PlasmiteError | None = None  # a Corrupt error met after the messages before it were delivered
        self._max = max_messages
        self._error_on_gap = error_on_gap
        self._on_gap = on_gap
        self._tags = tag_matcher(tags)
        self._where = where
        self._deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self._buf: deque = deque()
        self._delivered = 0
        self._done = False
        self.timed_out = False
        st = pf.read_state()
        expected = None
        if since_seq is not None:
            expected = since_seq
            start = max(since_seq, st.oldest)
        elif last is not None:
            start = max(st.oldest, st.newest - last + 1)
        elif since_time_ns is not None:
            start = pf.seq_at_time(since_time_ns, st)
        else:
            start = st.oldest
        self._expected = expected
        if start > st.newest:
            self._pos = st.head
        else:
            pos = pf.locate(start, st)
            self._pos = st.tail if pos is None else pos

    # ------------------------------------------------------------- internals
    def _fill(self, frames: list | None = None) -> None:
        if frames is None:
            pf = self._pf
            if pf.closed:
                raise UsageError("pool is closed", hint="keep the pool open while its streams are in use")
            frames, self._pos = pf.scan(self._pos, _BATCH)
        if not frames:
            return
        buf = self._buf
        exp = self._expected
        tags = self._tags
        codec = self._codec
        where = self._where
        msg = self._message
        if exp is not None and tags is None and where is None and frames[0][0] == exp and frames[-1][0] == exp + len(frames) - 1:
            # Fast path: contiguous, unfiltered (the common follow/read case).
            buf.extend([msg(seq, t, tr, pl, codec) for seq, t, tr, pl in frames])
            self._expected = frames[-1][0] + 1
            return
        for seq, t, tags_raw, payload in frames:
            if exp is not None:
                if seq < exp:
                    continue
                if seq > exp:
                    if self._error_on_gap:
                        buf.append((_GAP, exp))
                        self._expected = exp
                        return
                    if self._on_gap is not None:
                        self._on_gap(exp, seq)
            exp = seq + 1
            if tags is not None and not tags(tags_raw):
                continue
            m = msg(seq, t, tags_raw, payload, codec)
            if where is not None and not where(m):
                continue
            buf.append(m)
        self._expected = exp

    def _pop(self) -> Message:
        # Callers check _done first: a finished stream delivers nothing more.
        item = self._buf.popleft()
        if type(item) is tuple:
            self._done = True
            self._buf.clear()
            raise RetentionGapError(
                f"retention gap: messages from seq {item[1]} were overwritten before they were read",
                seq=item[1],
                hint="resume from a newer seq, rebuild from another source, or read faster / use a larger pool",
            )
        self._delivered += 1
        if self._max is not None and self._delivered >= self._max:
            self._done = True
        return item

    def _wait_time(self, timeout_ms: int | None) -> float | None:
        """Seconds left to wait (None: forever); 0 when the deadline passed."""
        left = None
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
        if timeout_ms is not None:
            left = timeout_ms / 1000.0 if left is None else min(left, timeout_ms / 1000.0)
        return None if left is None else max(0.0, left)

    # ---------------------------------------------------------------- public
    def next(self, timeout_ms: int | None = None) -> Message | None:
        """The next message, waiting for it; None when the stream has ended
        (max reached, deadline passed) or ``timeout_ms`` passed for this call."""
        if self._done:
            return None
        if self._buf:
            return self._pop()
        call_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        notifier = self._pf.notifier
        while True:
            self._fill()
            if self._buf:
                return self._pop()
            left = self._wait_time(None)
            if call_deadline is not None:
                c = max(0.0, call_deadline - time.monotonic())
                left = c if left is None else min(left, c)
            if left is not None and left <= 0:
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    self.timed_out = True
                    self._done = True
                return None
            seen = notifier.prepare(left)
            self._fill()
            if self._buf:
                return self._pop()
            notifier.wait(seen, left)

    def poll(self, limit: int | None = None) -> list[Message]:
        """Messages available now, without waiting (at most ``limit``;
        respects max and gaps)."""
        out: list[Message] = []
        while not self._done and (limit is None or len(out) < limit):
            if not self._buf:
                self._fill()
                if not self._buf:
                    break
            out.append(self._pop())
        return out

    def poll_json(self, limit: int = 1024) -> list[bytes]:
        """JSON envelopes available now, without waiting (at most ``limit``).

        For unfiltered JSON pools the envelopes are assembled straight from
        the frames, with no Message objects: the path of ``pls follow --jsonl``
        and the HTTP tail.
        """
        frames = self._fast_frames(limit)
        if frames is None:
            return self._raws(self.poll(limit))
        return envelopes(frames)

    def poll_data(self, limit: int = 1024) -> list[Any]:
        """The decoded data of the messages available now, without waiting (at
        most ``limit``): for bulk readers that need neither seqs nor times.

        For unfiltered JSON pools the payloads (checked to be one JSON value
        each) are decoded by one call over a JSON array of them, with no
        Message objects.
        """
        frames = self._fast_frames(limit)
        if frames is None:
            return [m.data for m in self.poll(limit)]
        if not frames:
            return []
        return _json_decode(b"[" + b",".join([f[3] for f in frames]) + b"]")

    def _fast_frames(self, limit: int) -> list | None:
        """The next frames when they can skip Message objects (an unfiltered
        JSON stream, contiguous seqs, valid JSON); None sends the caller to
        ``poll``. A damaged frame ends the batch; the next call raises."""
        if self._error is not None:
            self._done = True
            raise self._error
        if (
            self._buf
            or self._done
            or self._codec is not None
            or self._tags is not None
            or self._where is not None
            or self._expected is None
            or self._max is not None
        ):
            return None
        pf = self._pf
        if pf.closed:
            raise UsageError("pool is closed", hint="keep the pool open while its streams are in use")
        frames, self._pos = pf.scan(self._pos, limit)
        if not frames:
            return frames
        exp = self._expected
        if frames[0][0] != exp or frames[-1][0] != exp + len(frames) - 1:
            # A gap or already-seen seqs: let the general path apply the rules.
            self._fill(frames)
            return None
        bad = check_frames(frames)
        if bad is not None:
            # Deliver what precedes the damaged frame; the next call raises.
            try:
                self._message(*frames[bad]).raw
            except PlasmiteError as exc:
                self._error = exc
                frames = frames[:bad]
                if not frames:
                    self._done = True
                    raise
        self._expected = frames[-1][0] + 1
        self._delivered += len(frames)
        return frames

    def _raws(self, messages: list[Message]) -> list[bytes]:
        """Envelopes of ``messages``; one that turns out damaged ends the
        list, and the next ``poll_json`` raises its Corrupt error."""
        out = []
        for m in messages:
            try:
                out.append(m.raw)
            except PlasmiteError as exc:
                if not out:
                    self._done = True
                    raise
                self._error = exc
                break
        return out

    # ----------------------------------------------------------------- async
    async def anext(self) -> Message | None:
        """Async next(): waits on a shared watcher thread, never blocking the loop."""
        waiter = _async_waiter(self._pf)
        while True:
            if self._done:
                return None
            if self._buf:
                return self._pop()
            self._fill()
            if self._buf:
                return self._pop()
            left = self._wait_time(None)
            if left is not None and left <= 0:
                self.timed_out = True
                self._done = True
                return None
            seen = self._pf.notifier.counter()
            self._fill()
            if self._buf:
                return self._pop()
            await waiter.wait(seen, left)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        m = await self.anext()
        if m is None:
            raise StopAsyncIteration
        return m


class _AsyncWaiter:
    """One thread per open pool file that sleeps on the futex for all asyncio
    waiters of that pool, so many async tails cost one thread, not many."""

    def __init__(self, pf) -> None:
        self._pf = pf
        self._lock = threading.Lock()
        self._waiters: dict = {}  # future -> (loop, seen counter)
        self._thread: threading.Thread | None = None

    async def wait(self, seen: int, timeout: float | None) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._waiters[fut] = (loop, seen)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plasmite-async-waiter", daemon=True)
                self._thread.start()
        try:
            if self._pf.notifier.counter() != seen:
                return
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.pop(fut, None)

    def _run(self) -> None:
        notifier = self._pf.notifier
        idle = 0
        while True:
            with self._lock:
                if not self._waiters:
                    idle += 1
                    if idle > 20 or self._pf.closed:
                        self._thread = None
                        return
                else:
                    idle = 0
            if self._pf.closed:
                with self._lock:
                    self._thread = None
                return
            cur = notifier.prepare(None)
            with self._lock:
                ready = [(f, lp) for f, (lp, s) in self._waiters.items() if s != cur]
            for f, lp in ready:
                lp.call_soon_threadsafe(_resolve, f)
            notifier.wait(cur, 0.05 if not self._waiters else None)


def _resolve(fut) -> None:
    if not fut.done():
        fut.set_result(None)


_waiters_lock = threading.Lock()


def _async_waiter(pf) -> _AsyncWaiter:
    w = getattr(pf, "_async_waiter", None)
    if w is None:
        with _waiters_lock:
            w = getattr(pf, "_async_waiter", None)
            if w is None:
                w = pf._async_waiter = _AsyncWaiter(pf)
    return w
