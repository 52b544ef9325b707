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

from .envelope import Message, build_messages, check_frames, decode_frames, decode_joined
from .errors import PlasmiteError, UsageError
from .framescan import envelopes
from .speedups import compiled
from .stream_base import BufferedStream

_json_decode = msgspec.json.decode
_BATCH = 512
_frames_ext = compiled("_frames")
_stream_ext = compiled("_stream")
COMPILED = _stream_ext is not None  # the compiled Cursor delivers next/next_json
_Joined: Any = None if _frames_ext is None else getattr(_frames_ext, "Joined", None)  # an older build lacks it


class _CursorPy:
    """The reference of the compiled ``plasmite_speedups._stream.Cursor``: a
    message already read ahead is delivered without entering the slow path
    (the hot call of a read); anything else goes to ``_next_slow``."""

    _buf: deque
    _done: bool
    _delivered: int
    _max: int | None

    def next(self, timeout_ms: int | None = None) -> Message | None:
        """The next message, waiting for it; None when the stream has ended
        (max reached, deadline passed) or ``timeout_ms`` passed for this call."""
        if self._done:
            return None
        buf = self._buf
        if buf and type(buf[0]) is not tuple:  # not a retention-gap marker
            n = self._delivered = self._delivered + 1
            mx = self._max
            if mx is not None and n >= mx:
                self._done = True
            return buf.popleft()
        return self._next_slow(timeout_ms)  # type: ignore[attr-defined]


_Cursor: Any = _CursorPy if _stream_ext is None else _stream_ext.Cursor


class Stream(_Cursor, BufferedStream):
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
        super().__init__(since_seq, max_messages, timeout_ms, error_on_gap, last=last, tags=tags, where=where,
                         on_gap=on_gap)
        self._pool = pool
        pf = self._pf = pool._file()
        self._codec = pool._payload_codec
        self._message = pool._message
        self._error: PlasmiteError | None = None  # a Corrupt error met after the messages before it were delivered
        st = pf.read_state()
        if since_seq is not None:
            start = max(since_seq, st.oldest)
        elif last is not None:
            start = max(st.oldest, st.newest - last + 1)
        elif since_time_ns is not None:
            start = pf.seq_at_time(since_time_ns, st)
        else:
            start = st.oldest
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
            buf.extend(build_messages(msg, frames, codec))
            self._expected = frames[-1][0] + 1
            return
        for seq, t, tags_raw, payload in frames:
            if exp is not None:
                if seq < exp:
                    continue
                if seq > exp and self._gap(exp, seq):
                    return
            exp = seq + 1
            if tags is not None and not tags(tags_raw):
                continue
            m = msg(seq, t, tags_raw, payload, codec)
            if where is not None and not where(m):
                continue
            buf.append(m)
        self._expected = exp

    # ---------------------------------------------------------------- public
    def _next_slow(self, timeout_ms: int | None) -> Message | None:
        """``next`` when no message is buffered ahead (or a gap marker is
        first): fill from the pool, waiting for writers as allowed."""
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
            left = self._wait_left(call_deadline)
            if left == 0:
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
        if _Joined is not None:
            values = self._joined_data(limit)
            if values is not None:
                return values
        frames = self._fast_frames(limit, checked=False)
        if frames is None:
            return [m.data for m in self.poll(limit)]
        if not frames:
            return []
        values = decode_frames(frames)  # checks and decodes in one parse
        if values is not None:
            return values
        valid = self._valid_prefix(frames)
        self._expected = valid[-1][0] + 1
        self._delivered -= len(frames) - len(valid)
        return _json_decode(b"[" + b",".join([f[3] for f in valid]) + b"]")

    def _joined_data(self, limit: int) -> list | None:
        """``poll_data``'s compiled path: the scan joins the payloads (and
        tags) of an unfiltered JSON stream into one buffer each, decoded and
        checked by one call; None sends the caller to the per-frame path,
        which rereads from the same position (nothing is consumed here
        unless every frame was contiguous and valid)."""
        if self._error is not None:
            return None
        window = self._bulk_window(limit)
        pf = self._pf
        if window is None or window[0] <= 0 or pf.closed:
            return None
        take, exp = window
        sink, pos = pf.scan(self._pos, take, _Joined(exp))
        n = len(sink)
        if not n or not sink.ok:
            return None
        payloads, tags, tagged = sink.take()
        values = decode_joined(payloads, tags, n, tagged)
        if values is None:
            return None
        self._pos = pos
        self._expected = exp + n
        self._delivered += n
        if self._max is not None and self._delivered >= self._max:
            self._done = True
        return values

    def _bulk_window(self, limit: int) -> tuple[int, int] | None:
        """(how many frames a bulk read may take without Message objects,
        never past max_messages; the seq it expects first), or None when it
        must go through ``poll`` (messages read ahead, the stream ended, a
        codec or a filter, or no expected seq yet)."""
        exp = self._expected
        if (self._buf or self._done or self._codec is not None or self._tags is not None
                or self._where is not None or exp is None):
            return None
        return (limit if self._max is None else min(limit, self._max - self._delivered)), exp

    def _fast_frames(self, limit: int, checked: bool = True) -> list | None:
        """The next frames when they can skip Message objects (an unfiltered
        JSON stream, contiguous seqs, valid JSON); None sends the caller to
        ``poll``. A damaged frame ends the batch; the next call raises.
        ``checked=False`` leaves the validity check to the caller (which
        must run ``_valid_prefix`` on a failure)."""
        if self._error is not None:
            self._done = True
            raise self._error
        window = self._bulk_window(limit)
        if window is None:
            return None
        take, exp = window
        pf = self._pf
        if pf.closed:
            raise UsageError("pool is closed", hint="keep the pool open while its streams are in use")
        frames, self._pos = pf.scan(self._pos, take)
        if not frames:
            return frames
        if frames[0][0] != exp or frames[-1][0] != exp + len(frames) - 1:
            # A gap or already-seen seqs: let the general path apply the rules.
            self._fill(frames)
            return None
        if checked:
            frames = self._valid_prefix(frames)
        self._expected = frames[-1][0] + 1
        self._delivered += len(frames)
        if self._max is not None and self._delivered >= self._max:
            self._done = True
        return frames

    def _valid_prefix(self, frames: list) -> list:
        """``frames`` up to the first damaged one, whose Corrupt error the
        next call raises (raised now when it is the first)."""
        bad = check_frames(frames)
        if bad is not None:
            try:
                self._message(*frames[bad]).raw
            except PlasmiteError as exc:
                self._error = exc
                frames = frames[:bad]
                if not frames:
                    self._done = True
                    raise
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
            left = self._wait_left(None)
            if left == 0:
                return None
            seen = self._pf.notifier.counter()
            self._fill()
            if self._buf:
                return self._pop()
            await waiter.wait(seen, left)

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
