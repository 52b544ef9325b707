"""The follow machinery of ``pls follow`` and ``pls duplex``, kept free of click.

The output loop is the CLI's hot path for readers: in JSON Lines mode each
message's compact envelope (``Message.raw``) is written unchanged into a
buffered stdout, and the buffer is flushed whenever the pool has nothing more
to give, so a live follower sees each message at once while a catch-up over
history runs at full speed. ``--tag`` filtering happens where the pool
declares ``LOCAL_READS`` (in the core, on the raw tags blob, payloads not
decoded), else here; ``--where`` uses the ``jq`` filter plugin, compiled once
per expression. The loops use only the pool-handle contract
(``plasmite_core.protocols``) and the capabilities a handle declares.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, Callable

from plasmite_core.protocols import Capability


def compile_where(exprs) -> Callable[[Any], bool] | None:
    """One predicate for all ``--where`` expressions (each compiled once)."""
    if not exprs:
        return None
    from plasmite_core import plugins

    factory = plugins.filter_factory("jq")
    preds = [factory(e) for e in exprs]
    raw_ok = all(p.accepts_raw for p in preds)

    if raw_ok:
        if len(preds) == 1:
            p0 = preds[0]
            return lambda m: p0(m.raw)
        return lambda m: all(p(m.raw) for p in preds)
    return lambda m: all(p(m.to_dict()) for p in preds)


def has_tags(tags: list[str]) -> Callable[[Any], bool]:
    def has(m) -> bool:
        mine = m.tags
        return all(t in mine for t in tags)

    return has


def both(a, b):
    if b is None:
        return a
    return lambda m: a(m) and b(m)


class Emitter:
    """Writes messages to stdout in the chosen format; flushes on demand."""

    def __init__(self, fmt: str, data_only: bool) -> None:
        from .output import color_json_out, colorize_json

        self.out = sys.stdout.buffer
        self.write = self.out.write
        if color_json_out():  # --color always: every JSON byte goes through the colouring
            write = self.out.write
            self.write = lambda b: write(colorize_json(b))
        self.raw_lines = fmt == "jsonl" and not data_only  # each line is Message.raw
        if fmt == "jsonl":
            if data_only:
                self.emit = self._jsonl_data
            else:
                self.emit = _jsonl_writer(self.write)
        else:
            import msgspec

            self._format = msgspec.json.format
            self.emit = self._pretty_data if data_only else self._pretty

    def _jsonl_data(self, m) -> None:
        self.write(m.data_json() + b"\n")

    def _pretty(self, m) -> None:
        self.write(self._format(m.raw, indent=2) + b"\n")

    def _pretty_data(self, m) -> None:
        self.write(self._format(m.data_json(), indent=2) + b"\n")

    def flush(self) -> None:
        self.out.flush()


def _jsonl_writer(write):
    """``emit(m)``: the compact envelope (``Message.raw``) and a newline."""

    def emit(m) -> None:
        write(m.raw + b"\n")

    return emit


class DropNotices:
    """Drop (retention gap) notices on stderr, at most one per second."""

    def __init__(self, pool_ref: str, path_label: str, *, quiet: bool, cmd: str = "follow") -> None:
        self.pool_ref = pool_ref
        self.path_label = path_label
        self.quiet = quiet
        self.cmd = cmd
        self.pending: list[int] | None = None  # [last_seen, next_seen]
        self.last_at = 0.0

    def gap(self, first_missing: int, resumed: int) -> None:
        if self.quiet:
            return
        if self.pending is None:
            self.pending = [first_missing - 1, resumed]
        else:
            self.pending[1] = resumed
        self.maybe_emit()

    def maybe_emit(self, force: bool = False) -> None:
        if self.pending is None:
            return
        now = time.monotonic()
        if not force and now - self.last_at < 1.0:
            return
        last_seen, next_seen = self.pending
        self.pending = None
        self.last_at = now
        dropped = max(0, next_seen - last_seen - 1)
        from .output import notice

        sys.stdout.flush()
        notice("drop", self.cmd, self.pool_ref, f"dropped {dropped} messages",
               {"last_seen_seq": last_seen, "next_seen_seq": next_seen, "dropped_count": dropped,
                "pool_path": self.path_label})


def _history_then_live(handle, predicate, tail: int, opts: dict[str, Any]):
    """Open a stream for follow; returns (stream, history to print first, extra).

    Without --tail the stream starts at the live end. With --tail N and no
    filter the core positions it (``last=N``). With filters, --tail counts
    matching messages: the retained history is scanned, keeping a window of
    the N newest matches.
    """
    if not tail:
        return handle.open_stream(last=0, **opts), [], None
    if predicate is None and "tags" not in opts:
        return handle.open_stream(last=tail, **opts), [], None
    newest = handle.bounds()[1]
    stream = handle.open_stream(**opts)
    if newest is None:
        return stream, [], None
    window: deque = deque(maxlen=tail)
    if predicate is None:
        extra = _scan_history(handle, stream, newest, window.append)
    else:
        extra = _scan_history(handle, stream, newest, lambda m: window.append(m) if predicate(m) else None)
    return stream, list(window), extra


def _scan_history(handle, stream, newest: int, consume: Callable[[Any], Any]):
    """Pass the messages of ``stream`` up to seq ``newest`` to ``consume``.

    Returns a message newer than ``newest`` that arrived meanwhile (it belongs
    to the live part), or None. With ``LOCAL_READS`` declared, ``next(0)``
    returning None means all history was read (filtered messages included);
    otherwise the history crosses a network, so a read may wait a little.
    """
    wait_ms = 0 if Capability.LOCAL_READS in handle.capabilities else 5000
    nxt = stream.next
    while True:
        m = nxt(wait_ms)
        if m is None:
            return None
        if m.seq > newest:
            return m
        consume(m)
        if m.seq >= newest:
            return None


def _polling(next_fn):
    """``next`` without wake-up waits: poll with a 1 ms → 50 ms backoff (--no-notify)."""

    def nxt(timeout_ms=None):
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        backoff = 0.001
        while True:
            m = next_fn(0)
            if m is not None or timeout_ms == 0:
                return m
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                time.sleep(min(backoff, left))
            else:
                time.sleep(backoff)
            backoff = min(backoff * 2, 0.05)

    return nxt


def run_follow(handle, emitter: Emitter, predicate, *, tail: int, since_ns: int | None, one: bool,
               timeout_ms: float | None, drops: DropNotices, opts: dict[str, Any], poll: bool = False,
               stop=None) -> int:
    emit = emitter.emit
    flush = emitter.flush
    idle_s = None if timeout_ms is None else timeout_ms / 1000.0
    tail_wait = one and tail > 0  # --one --tail N: print the Nth newest match once N matches exist

    if since_ns is not None:
        stream, history, extra = handle.open_stream(since_time_ns=since_ns, **opts), [], None
    else:
        stream, history, extra = _history_then_live(handle, predicate, tail, opts)
    window: deque = deque(history, maxlen=tail or None) if tail_wait else deque()
    if tail_wait:
        if len(window) >= tail:
            emit(window[-1])
            flush()
            return 0
    else:
        for m in history:
            emit(m)
            if one:
                flush()
                return 0
    nxt = _polling(stream.next) if poll else stream.next
    deadline = None if idle_s is None else time.monotonic() + idle_s
    emitted = False  # output since the idle deadline was last set
    told_waiting = False
    simple = predicate is None and not one and not tail_wait
    write_raw = emitter.write if (simple and emitter.raw_lines) else None
    batches = not poll and Capability.JSON_BATCHES in handle.capabilities
    while True:
        if extra is not None:
            m, extra = extra, None
        else:
            m = nxt(0)
            if m is not None and write_raw is not None:
                # Hot loop: copy envelopes to the buffered stdout until caught
                # up, in batches assembled by the core where it offers them.
                write_raw(m.raw + b"\n")
                if batches:
                    batch = stream.poll_json(1024)
                    while batch:
                        batch.append(b"")
                        write_raw(b"\n".join(batch))
                        batch = stream.poll_json(1024)
                    m = None
                else:
                    m = nxt(0)
                    while m is not None:
                        write_raw(m.raw + b"\n")
                        m = nxt(0)
                emitted = True
        if m is None:
            # Caught up: make the output visible, then wait for more.
            flush()
            drops.maybe_emit(force=True)
            if tail_wait and not told_waiting:
                told_waiting = _waiting_notice(len(window), tail)
            if stop is not None and stop.is_set():
                return 0
            if deadline is None:
                m = nxt() if stop is None else nxt(200)
                if m is None:
                    if stop is None:
                        return 0
                    continue
            else:
                now = time.monotonic()
                if emitted:
                    deadline = now + idle_s
                    emitted = False
                left = deadline - now
                if left <= 0:
                    return 124
                m = nxt(min(int(left * 1000) + 1, 200 if stop is not None else 1 << 30))
                if m is None:
                    continue
        if simple:
            emit(m)
            emitted = True
            continue
        if predicate is not None and not predicate(m):
            continue
        if tail_wait:
            window.append(m)
            if len(window) >= tail:
                emit(window[-1])
                flush()
                return 0
            continue
        emit(m)
        emitted = True
        if one:
            flush()
            return 0


def _waiting_notice(have: int, want: int) -> bool:
    """``--one --tail N`` with fewer than N matches waits (as upstream); say so to a person."""
    if sys.stderr.isatty():
        from .output import write_err

        write_err(f"waiting: the pool has {have} of the {want} matching messages --tail {want} --one "
                  "waits for; it prints the newest once they exist (Ctrl-C to stop)\n")
    return True


def run_replay(handle, emitter: Emitter, predicate, *, tail: int, since_ns: int | None, speed: float,
               one: bool, opts: dict[str, Any]) -> int:
    """Emit the selected history with its original spacing / speed, then exit."""
    newest = handle.bounds()[1]
    if newest is None:
        return 0
    if since_ns is not None:
        stream = handle.open_stream(since_time_ns=since_ns, **opts)
        selected: Any = []
    else:
        stream = handle.open_stream(**opts)
        selected = deque(maxlen=tail)
    if predicate is None:
        _scan_history(handle, stream, newest, selected.append)
    else:
        _scan_history(handle, stream, newest, lambda m: selected.append(m) if predicate(m) else None)
    from plasmite_core.pacing import paced

    emit = emitter.emit
    for m in paced(selected, speed, before_sleep=emitter.flush):
        emit(m)
        if one:
            break
    emitter.flush()
    return 0
