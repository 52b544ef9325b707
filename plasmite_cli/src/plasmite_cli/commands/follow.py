"""``pls follow``: stream a pool's messages to stdout as they arrive.

The output loop is the CLI's hot path for readers: in JSON Lines mode each
message's compact envelope (``Message.raw``) is written unchanged into a
buffered stdout, and the buffer is flushed whenever the pool has nothing more
to give, so a live follower sees each message at once while a catch-up over
history runs at full speed. ``--tag`` filtering happens in the core on the
raw tags blob (payloads are not decoded); ``--where`` uses the ``jq`` filter
plugin, compiled once per expression.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, Callable

import click

from .common import complete_pool, get_state, output_format, remote_options

EPILOG = """\b
Examples:
  pls follow chat                                   # live, until Ctrl-C
  pls follow chat --tail 10                         # last 10, then live
  pls follow ci --where '.data.status == "green"' --one   # wait for a match
  pls follow telemetry --tag alert --where '.data.service == "api"'
  pls follow incidents --since 1h --replay 10       # replay at 10x speed
  pls follow build --since 12h --replay 0 --jsonl   # dump history, then exit
  pls follow chat --jsonl | jq -r .data.msg

\b
Start: new messages only by default; --tail N starts with the N newest
(matching) messages; --since 30m|2h|1d|RFC3339 starts at that time.
--replay SPEED re-emits the selected history with its original spacing
divided by SPEED (0 = no delay) and exits at its end; it needs --tail or
--since.

\b
Filters: --tag and --where may repeat; all must hold. --where takes a jq
expression that must yield booleans (install plasmite-jq); a runtime error
in it counts as no match.

\b
Output: pretty JSON by default, one compact envelope per line with --jsonl
(or --format jsonl); --data-only prints only .data. When messages were
overwritten before they could be read, a drop notice goes to stderr (silence
it with --quiet-drops). --timeout exits 124 when no message is printed for
that long."""


@click.command(epilog=EPILOG, short_help="Stream messages from a pool.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.option("-n", "--tail", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Print the N newest matching messages first, then keep following.")
@click.option("--since", metavar="WHEN", help="Start at messages from this time: 30m, 2h, 1d or RFC 3339.")
@click.option("--one", is_flag=True, help="Exit after printing one matching message.")
@click.option("--timeout", metavar="DURATION", help="Exit 124 if nothing is printed for DURATION (500ms, 5s, 1m).")
@click.option("--where", "where", multiple=True, metavar="EXPR",
              help="Keep messages for which the jq EXPR is true (repeatable; all must hold).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Keep messages carrying TAG (repeatable; all must match).")
@click.option("--jsonl", is_flag=True, help="Print JSON Lines (short for --format jsonl; give one or the other).")
@click.option("--format", "fmt", type=click.Choice(["pretty", "jsonl"]), help="Output format (default pretty).")
@click.option("--data-only", is_flag=True, help="Print only each message's .data.")
@click.option("--replay", type=float, metavar="SPEED",
              help="Replay the selected history with original timing / SPEED (0 = instant), then exit.")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist (local refs).")
@click.option("--quiet-drops", is_flag=True, help="Do not print drop notices on stderr.")
@click.option("--no-notify", is_flag=True, help="Do not sleep on wake-ups; poll the pool instead.")
@remote_options
@click.pass_context
def follow(ctx, pool, tail, since, one, timeout, where, tags, jsonl, fmt, data_only, replay, create,
           quiet_drops, no_notify, token, token_file, tls_ca, tls_skip_verify):
    """Print messages from POOL as they arrive."""
    from plasmite_core.errors import UsageError

    from .. import parsing, targets

    fmt = output_format(jsonl, fmt)
    if since is not None and tail:
        raise UsageError("--since and --tail cannot be combined", hint="use one of --since WHEN or --tail N")
    timeout_ms = parsing.parse_duration_ms(timeout) if timeout is not None else None
    now = time.time_ns()
    since_ns = parsing.parse_since(since, now) if since is not None else None
    if replay is not None:
        if replay != replay or replay in (float("inf"), float("-inf")):
            raise UsageError("--replay speed must be a finite number", hint="--replay 1 is real time, 0 no delay")
        if replay < 0:
            raise UsageError("--replay speed must be non-negative", hint="--replay 1 is real time, 2 twice as fast, 0 no delay")
        if not tail and since is None:
            raise UsageError("--replay requires --tail or --since",
                             hint="replay works on history: add --tail N or --since 1h")
    predicate = compile_where(where)
    tag_list = list(tags)

    if targets.is_http(pool):
        for flag, used in (("--create", create), ("--since", since is not None), ("--replay", replay is not None),
                           ("--no-notify", no_notify), ("--quiet-drops", quiet_drops)):
            if used:
                raise UsageError(f"remote follow does not support {flag}",
                                 hint="use --tail N for remote history; --since/--replay work on local pools")
        handle = targets.remote_pool(pool, "follow", token=token, token_file=token_file,
                                     tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
        label = pool
    else:
        handle = targets.open_pool(get_state(ctx), pool, "follow", create=create, token=token,
                                   token_file=token_file, tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
        label = str(getattr(handle, "path", pool))

    if since_ns is not None and since_ns > now:
        return 0

    emitter = Emitter(fmt, data_only)
    drops = DropNotices(targets.redact(pool), label, quiet=quiet_drops)
    opts: dict[str, Any] = {"on_gap": drops.gap}
    if tag_list:
        if targets.is_url(pool):
            # Over a network: test tags here so every message reaches the client
            # and the --tail scan knows when it has seen the newest one.
            predicate = _and(_has_tags(tag_list), predicate)
        else:
            opts["tags"] = tag_list  # the core tests tags without decoding payloads

    if replay is not None:
        return run_replay(handle, emitter, predicate, tail=tail, since_ns=since_ns, speed=replay, one=one, opts=opts)
    rc = run_follow(handle, emitter, predicate, tail=tail, since_ns=since_ns, one=one,
                    timeout_ms=timeout_ms, drops=drops, opts=opts, poll=no_notify)
    if rc == 124 and sys.stderr.isatty():
        from ..output import write_err

        write_err(f"No messages received (timed out after {timeout}).\n")
    return rc


def compile_where(exprs) -> Callable[[Any], bool] | None:
    """One predicate for all ``--where`` expressions (each compiled once)."""
    if not exprs:
        return None
    from plasmite_core import plugins

    factory = plugins.filter_factory("jq")
    preds = [factory(e) for e in exprs]
    raw_ok = all(getattr(p, "accepts_raw", False) for p in preds)

    if raw_ok:
        if len(preds) == 1:
            p0 = preds[0]
            return lambda m: p0(m.raw)
        return lambda m: all(p(m.raw) for p in preds)
    return lambda m: all(p(m.to_dict()) for p in preds)


def _has_tags(tags: list[str]) -> Callable[[Any], bool]:
    def has(m) -> bool:
        mine = m.tags
        return all(t in mine for t in tags)

    return has


def _and(a, b):
    if b is None:
        return a
    return lambda m: a(m) and b(m)


class Emitter:
    """Writes messages to stdout in the chosen format; flushes on demand."""

    def __init__(self, fmt: str, data_only: bool) -> None:
        self.out = sys.stdout.buffer
        self.write = self.out.write
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
        self.write(_data_json(m) + b"\n")

    def _pretty(self, m) -> None:
        self.write(self._format(m.raw, indent=2) + b"\n")

    def _pretty_data(self, m) -> None:
        self.write(self._format(_data_json(m), indent=2) + b"\n")

    def flush(self) -> None:
        self.out.flush()


def _jsonl_writer(write):
    """``emit(m)``: the compact envelope (``Message.raw``) and a newline."""

    def emit(m) -> None:
        write(m.raw + b"\n")

    return emit


def _data_json(m) -> bytes:
    fn = getattr(m, "data_json", None)
    if fn is not None:
        return fn()
    import msgspec

    return msgspec.json.encode(m.data)


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
        from ..output import notice

        sys.stdout.flush()
        notice("drop", self.cmd, self.pool_ref, f"dropped {dropped} messages",
               {"last_seen_seq": last_seen, "next_seen_seq": next_seen, "dropped_count": dropped,
                "pool_path": self.path_label})


def _open_stream(handle, **opts):
    """open_stream, dropping keywords a (remote) implementation does not take."""
    while True:
        try:
            return handle.open_stream(**opts)
        except TypeError as exc:
            text = str(exc)
            for key in ("on_gap", "where"):
                if key in opts and key in text:
                    opts.pop(key)
                    break
            else:
                raise


def _history_then_live(handle, predicate, tail: int, opts: dict[str, Any]):
    """Open a stream for follow; returns (stream, history to print first, extra).

    Without --tail the stream starts at the live end. With --tail N and no
    filter the core positions it (``last=N``). With filters, --tail counts
    matching messages: the retained history is scanned, keeping a window of
    the N newest matches.
    """
    if not tail:
        return _open_stream(handle, last=0, **opts), [], None
    if predicate is None and "tags" not in opts:
        return _open_stream(handle, last=tail, **opts), [], None
    newest = handle.bounds()[1]
    stream = _open_stream(handle, **opts)
    if newest is None:
        return stream, [], None
    window: deque = deque(maxlen=tail)
    if predicate is None:
        extra = _scan_history(stream, newest, window.append)
    else:
        extra = _scan_history(stream, newest, lambda m: window.append(m) if predicate(m) else None)
    return stream, list(window), extra


def _scan_history(stream, newest: int, consume: Callable[[Any], Any]):
    """Pass the messages of ``stream`` up to seq ``newest`` to ``consume``.

    Returns a message newer than ``newest`` that arrived meanwhile (it belongs
    to the live part), or None. A local stream has its history in the mapping,
    so ``next(0)`` returning None means all of it was read (filtered messages
    included); a remote stream receives it over the network, so a read may
    wait a little.
    """
    from plasmite_core.stream import Stream

    wait_ms = 0 if isinstance(stream, Stream) else 5000
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
        stream, history, extra = _open_stream(handle, since_time_ns=since_ns, **opts), [], None
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
    simple = predicate is None and not one and not tail_wait
    write_raw = emitter.write if (simple and emitter.raw_lines) else None
    while True:
        if extra is not None:
            m, extra = extra, None
        else:
            m = nxt(0)
            if m is not None and write_raw is not None:
                # Hot loop: copy envelopes to the buffered stdout until caught
                # up, in batches assembled by the core where it offers them.
                write_raw(m.raw + b"\n")
                poll_json = None if poll else getattr(stream, "poll_json", None)
                if poll_json is not None:
                    batch = poll_json(1024)
                    while batch:
                        batch.append(b"")
                        write_raw(b"\n".join(batch))
                        batch = poll_json(1024)
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


def run_replay(handle, emitter: Emitter, predicate, *, tail: int, since_ns: int | None, speed: float,
               one: bool, opts: dict[str, Any]) -> int:
    """Emit the selected history with its original spacing / speed, then exit."""
    newest = handle.bounds()[1]
    if newest is None:
        return 0
    if since_ns is not None:
        stream = _open_stream(handle, since_time_ns=since_ns, **opts)
        selected: Any = []
    else:
        stream = _open_stream(handle, **opts)
        selected = deque(maxlen=tail)
    if predicate is None:
        _scan_history(stream, newest, selected.append)
    else:
        _scan_history(stream, newest, lambda m: selected.append(m) if predicate(m) else None)
    emit = emitter.emit
    prev_t = None
    start_wall = time.monotonic()
    first_t = None
    for m in selected:
        if speed > 0 and prev_t is not None:
            # Schedule against the first message so sleep errors do not accumulate.
            due = start_wall + (m.time_ns - first_t) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                emitter.flush()
                time.sleep(delay)
        if first_t is None:
            first_t = m.time_ns
        prev_t = m.time_ns
        emit(m)
        if one:
            break
    emitter.flush()
    return 0
