"""``pls duplex``: follow a pool and feed it from stdin in one process.

On a terminal it is a chat: each typed line becomes ``{"from": ME, "msg":
LINE}`` and other participants' messages print as they arrive (your own are
hidden unless ``--echo-self``). With piped stdin it ingests a JSON stream like
``feed`` and ends at EOF. The follow side runs in a thread so a slow reader
never delays sending; the command ends when either side finishes.
"""

from __future__ import annotations

import queue
import sys
import threading
import time

import click

from .common import complete_pool, get_state, output_format, remote_options


@click.command(
    epilog="""\b
Examples:
  pls duplex chat --create --me alice       # terminal 1
  pls duplex chat --me bob --tail 20        # terminal 2, with recent history
  printf '{"from":"bot","msg":"ready"}\\n' | pls duplex chat --me bot

\b
Terminal stdin needs --me; piped stdin is a JSON stream (format detected
as for `pls feed`), or with --me plain text lines, each sent as
{"from": ME, "msg": LINE}. On a terminal each message prints as one line
(`HH:MM:SS from: msg`); --jsonl or --format choose JSON output. Ends at
end of input, on --timeout (exit 124) or on Ctrl-C. Remote refs accept
--tail but not --since.""",
    short_help="Chat on a pool: send stdin, print others' messages.",
)
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.option("--me", metavar="NAME", help="Your name: sent as .data.from; your own messages are hidden.")
@click.option("-n", "--tail", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Print the N newest messages first.")
@click.option("--since", metavar="WHEN", help="Start at messages from this time: 30m, 2h or RFC 3339.")
@click.option("--echo-self", is_flag=True, help="Also print your own messages.")
@click.option("--jsonl", is_flag=True, help="Print JSON Lines (short for --format jsonl; give one or the other).")
@click.option("--format", "fmt", type=click.Choice(["pretty", "jsonl"]), help="Output format (default pretty).")
@click.option("--timeout", metavar="DURATION", help="Exit 124 if nothing is printed for DURATION.")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist (on a server too, if it allows).")
@remote_options
@click.pass_context
def duplex(ctx, pool, me, tail, since, echo_self, jsonl, fmt, timeout, create,
           token, token_file, tls_ca, tls_skip_verify):
    """Send stdin to POOL while printing what others send."""
    from plasmite_core.client import Durability
    from plasmite_core.errors import UsageError

    from .. import parsing, targets
    from ..following import DropNotices, Emitter, run_follow

    chat_lines = not jsonl and fmt is None and _isatty(sys.stdout)
    fmt = output_format(jsonl, fmt)
    stdin_tty = _isatty(sys.stdin)
    if stdin_tty and not me:
        raise UsageError("terminal input needs --me", hint="give your name, e.g. `pls duplex chat --me alice`")
    if since is not None and tail:
        raise UsageError("--since and --tail cannot be combined", hint="use one of --since WHEN or --tail N")
    timeout_ms = parsing.parse_duration_ms(timeout) if timeout is not None else None
    now = time.time_ns()
    since_ns = parsing.parse_since(since, now) if since is not None else None

    if targets.is_http(pool):
        if since is not None:
            raise UsageError("remote duplex does not support --since", hint="use --tail N for remote history")
        remote = {"token": token, "token_file": token_file, "tls_ca": tls_ca, "tls_skip_verify": tls_skip_verify}
        # One connection per side: the follow side holds a long-lived stream.
        follow_handle = targets.remote_pool(pool, "duplex", create=create, **remote)
        send_handle = targets.remote_pool(pool, "duplex", **remote)
        label = pool
    else:
        state = get_state(ctx)
        remote = {"token": token, "token_file": token_file, "tls_ca": tls_ca, "tls_skip_verify": tls_skip_verify}
        follow_handle = targets.open_pool(state, pool, "duplex", create=create, **remote)
        send_handle = targets.open_pool(state, pool, "duplex", **remote)
        label = str(follow_handle.path)
    if since_ns is not None and since_ns > now:
        return 0

    def not_me(m) -> bool:
        data = m.data
        return not (isinstance(data, dict) and data.get("from") == me)

    predicate = not_me if (me and not echo_self) else None
    emitter = ChatEmitter() if chat_lines else Emitter(fmt, False)
    drops = DropNotices(targets.redact(pool), label, quiet=False, cmd="duplex")
    stop = threading.Event()
    results: queue.Queue = queue.Queue()

    def follow_side() -> None:
        try:
            rc = run_follow(follow_handle, emitter, predicate, tail=tail, since_ns=since_ns, one=False,
                            timeout_ms=timeout_ms, drops=drops, opts={"on_gap": drops.gap}, stop=stop)
            results.put(("follow", rc, None))
        except BaseException as exc:  # reported by the main thread
            results.put(("follow", None, exc))

    def send_side() -> None:
        try:
            if stdin_tty:
                for line in sys.stdin:
                    if stop.is_set():
                        break
                    text = line.rstrip("\r\n")
                    if not text.strip():
                        continue
                    send_handle.append({"from": me, "msg": text}, None, Durability.FAST)
                results.put(("send", 0, None))
            else:
                from ..feeding import ingest_stream
                from ..ingest import reader_for_fd

                read = reader_for_fd(sys.stdin.fileno())
                first = read(65536)
                if me and first.lstrip()[:1] not in (b"{", b"\x1e", b""):
                    results.put(("send", send_text_lines(send_handle, me, first, read), None))
                    return
                read = _prepend(first, read)
                outcome = ingest_stream(send_handle, sys.stdin.fileno(), targets.redact(pool), mode="auto", errors="stop", tags=[],
                                        durability=Durability.FAST, retries=0, delay_s=0.05, receipts=False,
                                        human=False, cmd="duplex", read=read)
                if outcome.total == 0:
                    raise UsageError("missing data input: stdin held no JSON values",
                                     hint="pipe JSON to duplex, or run it on a terminal with --me")
                results.put(("send", 1 if outcome.failed else 0, None))
        except BaseException as exc:
            results.put(("send", None, exc))

    follower = threading.Thread(target=follow_side, name="pls-duplex-follow", daemon=True)
    sender = threading.Thread(target=send_side, name="pls-duplex-send", daemon=True)
    follower.start()
    sender.start()
    try:
        while True:
            try:
                side, rc, exc = results.get(timeout=0.25)
                break
            except queue.Empty:
                continue
    finally:
        stop.set()
        if follower.is_alive():
            follower.join(timeout=1.0)
        try:
            emitter.flush()
        except (OSError, ValueError):
            pass
    if exc is not None:
        raise exc
    if side == "follow" and rc == 124 and sys.stderr.isatty():
        from ..output import write_err

        write_err(f"No messages received (timed out after {timeout}).\n")
    return rc


def send_text_lines(handle, me: str, first: bytes, read) -> int:
    """Piped plain text with --me: each non-blank line is sent as ``{"from": ME, "msg": LINE}``
    (a line holding a JSON object is sent as that object), as in a terminal chat."""
    import msgspec

    from plasmite_core.client import Durability

    buf = first
    chunk = first
    while True:
        *lines, buf = buf.split(b"\n")
        if not chunk:  # end of input: the last line has no newline
            lines.append(buf)
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            if not text.strip():
                continue
            try:
                value = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                value = None
            if not isinstance(value, dict):
                value = {"from": me, "msg": text}
            handle.append(value, None, Durability.FAST)
        if not chunk:
            return 0
        chunk = read(65536)
        buf += chunk


def _prepend(first: bytes, read):
    pending = [first]

    def again(n: int) -> bytes:
        return pending.pop() if pending else read(n)

    return again


class ChatEmitter:
    """Terminal output of duplex: one line per message, ``HH:MM:SS from: msg`` for chat
    messages and the compact data for anything else (a pretty block per line typed
    would scroll a conversation away)."""

    raw_lines = False  # run_follow's raw fast path does not apply

    def __init__(self) -> None:
        self.out = sys.stdout

    def emit(self, m) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(m.time_ns / 1e9))
        data = m.data
        if isinstance(data, dict) and isinstance(data.get("from"), str) and isinstance(data.get("msg"), str):
            body = f"{data['from']}: {data['msg']}"
        else:
            import json

            body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self.out.write(f"{stamp} {body}\n")

    def flush(self) -> None:
        self.out.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
