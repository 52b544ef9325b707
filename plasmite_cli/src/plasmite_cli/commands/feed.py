"""``pls feed``: append JSON messages from an argument, a file, or a stream.

One-shot feeds are the most common call, so this path imports little and
appends one message; streams are parsed by ``plasmite_cli.ingest`` and stored
with one ``append_many`` per read. Each stored message gets a receipt
(``seq``, ``time``, ``meta``, no ``data``): text on a terminal, a JSON line when
stdout is piped.
"""

from __future__ import annotations

import sys

import click

from .common import complete_pool, get_state, remote_options, with_retry

EPILOG = """\b
Examples:
  pls feed chat '{"from":"alice","msg":"hello"}'      # inline JSON
  pls feed alerts --tag sev1 --tag api '{"msg":"down"}'
  jq -c '.items[]' data.json | pls feed items           # JSON Lines on stdin
  pls feed items --file events.jsonl                    # a file (- for stdin)
  journalctl -o json-seq -f | pls feed syslog --create  # a live json-seq stream
  pls feed ci --create '{"status":"green"}'             # create the pool if missing

\b
Input: exactly one of DATA, --file, or piped stdin. --in picks the stream
format (auto detects JSON Lines, json-seq and event streams, and accepts
pretty or concatenated JSON). --errors skip reports each bad record on stderr
and exits 1 at the end if any was rejected; --errors stop (default) stops at
the first one, after storing the records before it.

\b
Output: one receipt per stored message: `fed seq=N at TIME` on a terminal,
{"seq","time","meta"} JSON lines when piped."""


@click.command(epilog=EPILOG, short_help="Append JSON messages to a pool.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.argument("data", metavar="[DATA]", required=False)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag the message(s) (repeatable).")
@click.option("-f", "--file", "file", metavar="PATH",
              help="Read a JSON value or stream from a file; - reads stdin.")
@click.option("-i", "--in", "in_mode", type=click.Choice(["auto", "jsonl", "json", "json-seq", "seq", "event"]),
              default="auto", show_default=True,
              help="Stream format for --file/stdin: auto, jsonl (one value per line), json "
                   "(pretty or concatenated values), json-seq (RFC 7464, alias seq), event (SSE data:).")
@click.option("-e", "--errors", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
              help="On a bad stream record: stop, or skip it with a notice on stderr.")
@click.option("--durability", type=click.Choice(["fast", "flush"]), default="fast", show_default=True,
              help="fast returns after the write; flush also syncs the pool file to disk.")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist (local refs).")
@click.option("--create-size", metavar="SIZE", help="Size of a pool made by --create, e.g. 8M (default 1M).")
@click.option("--retry", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retries for transient failures (pool busy, EAGAIN).")
@click.option("--retry-delay", metavar="DURATION",
              help="Pause between retries, e.g. 50ms, 1s (default 50ms; needs --retry).")
@remote_options
@click.pass_context
def feed(ctx, pool, data, tags, file, in_mode, errors, durability, create, create_size, retry, retry_delay,
         token, token_file, tls_ca, tls_skip_verify):
    """Append JSON messages to POOL.

    DATA is one inline JSON value. Without DATA, --file or piped stdin supply a
    stream of values, each stored as one message.
    """
    from plasmite_core.errors import UsageError

    from .. import parsing, targets

    if create_size is not None and not create:
        raise UsageError("--create-size requires --create", hint="add --create or remove --create-size")
    if retry_delay is not None and retry == 0:
        raise UsageError("--retry-delay requires --retry", hint="add --retry N or remove --retry-delay")
    if data is not None and file is not None:
        raise UsageError("both DATA and --file given", hint="use only one of DATA, --file, or stdin")
    size = parsing.parse_size(create_size, flag="--create-size") if create_size is not None else None
    delay_s = parsing.parse_duration_ms(retry_delay, flag="--retry-delay") / 1000 if retry_delay else 0.05
    dur = parsing.parse_durability(durability)
    tag_list = list(tags)

    stdin_is_tty = _isatty(sys.stdin)
    if data is None and file is None and stdin_is_tty:
        raise UsageError("missing data input", hint="give JSON as DATA, use --file PATH, or pipe JSON to stdin")

    state = get_state(ctx)
    if targets.is_url(pool):
        if create:
            raise UsageError("remote feed does not support --create",
                             hint="create remote pools on the server side, then rerun feed")
        handle = targets.remote_pool(pool, "feed", token=token, token_file=token_file,
                                     tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
    else:
        targets.reject_remote_flags("feed", token, token_file, tls_ca, tls_skip_verify)
        handle = targets.open_local(state, pool, "feed", create=create, create_size=size)

    out = sys.stdout
    human = _isatty(out)

    if data is not None:
        value = _parse_inline(data)
        msg = with_retry(retry, delay_s, lambda: handle.append(value, tag_list, dur))
        _write_receipts([msg], human)
        return 0

    if file is not None and file != "-":
        try:
            fh = open(file, "rb")
        except OSError as exc:
            from plasmite_core.errors import from_os_error

            raise from_os_error(exc, file, action="read") from None
        fd = fh.fileno()
    else:
        fh = None
        fd = sys.stdin.fileno()
    try:
        outcome = ingest_stream(handle, fd, pool, mode=in_mode, errors=errors, tags=tag_list, durability=dur,
                                retries=retry, delay_s=delay_s, receipts=True, human=human, cmd="feed")
    finally:
        if fh is not None:
            fh.close()
    if outcome.total == 0:
        raise UsageError("missing data input: the input held no JSON values",
                         hint="give JSON as DATA, use --file PATH, or pipe JSON to stdin")
    return 1 if outcome.failed else 0


def ingest_stream(handle, fd: int, pool_ref: str, *, mode: str, errors: str, tags: list[str], durability,
                  retries: int, delay_s: float, receipts: bool, human: bool, cmd: str):
    """Parse a stream from ``fd`` and append it to ``handle`` in batches."""
    from plasmite_core.errors import UsageError

    from .. import ingest
    from ..output import notice

    if errors == "skip" and mode == "json":
        raise UsageError("--errors skip needs input that can resynchronise",
                         hint="use --in jsonl or --in json-seq with --errors skip, or --errors stop")

    append_many = handle.append_many
    append_encoded = _encoded_appender(handle, tags)

    def on_values(values: list) -> None:
        if append_encoded is not None:
            # Local JSON pool: encode here and skip building Message objects.
            done = append_encoded(values, durability, retries, delay_s)
            if done is not None:
                if receipts:
                    _write_fast_receipts(done, append_encoded.tags_json, human)
                return
        if retries:
            msgs = with_retry(retries, delay_s, lambda: append_many(values, tags, durability))
        else:
            msgs = append_many(values, tags, durability)
        if receipts:
            _write_receipts(msgs, human)

    def on_failure(f: "ingest.Failure") -> None:
        if errors == "stop":
            hint = "fix the input, pick the right --in format, or use --errors skip to continue past bad records"
            raise UsageError(f"{f.message} (record {f.index})", hint=hint)
        notice("ingest_skip", cmd, pool_ref,
               "Skipped oversized record." if f.error_kind == "Oversize" else f"Skipped invalid JSON ({f.message}).",
               {**f.details(), "pool_path": str(getattr(handle, "path", pool_ref))})

    engine = ingest.Ingest(mode, errors, on_values, on_failure)
    outcome = engine.run(ingest.reader_for_fd(fd))
    if errors == "skip" and outcome.failed:
        s = "" if outcome.failed == 1 else "s"
        notice("ingest_summary", cmd, pool_ref, f"Finished with {outcome.failed} skipped record{s}.",
               {"total": outcome.total, "ok": outcome.ok, "failed": outcome.failed,
                "pool_path": str(getattr(handle, "path", pool_ref))})
    return outcome


def _encoded_appender(handle, tags: list[str]):
    """For a local pool storing compact JSON: ``append(values, ...) -> [(seq, time_ns)]``.

    Uses ``Pool.append_encoded`` with payloads encoded here. Returns None for
    other pools (remote, other codecs), or returns None from a call whose
    values it cannot encode, so the caller falls back to ``append_many`` and
    its error reporting.
    """
    import msgspec

    if getattr(handle, "codec", None) != "json" or not hasattr(handle, "append_encoded"):
        return None
    if any(not isinstance(t, str) or not t for t in tags):
        return None  # let append_many report the bad tag
    tags_blob = msgspec.json.encode(tags) if tags else b""
    if len(tags_blob) > 0xFFFF:
        return None
    enc = msgspec.json.Encoder().encode
    append_encoded = handle.append_encoded

    def append(values: list, durability, retries: int, delay_s: float):
        try:
            items = [(tags_blob, enc(v)) for v in values]
        except (RecursionError, msgspec.EncodeError, TypeError, ValueError, OverflowError):
            return None
        if retries:
            return with_retry(retries, delay_s, lambda: append_encoded(items, durability))
        return append_encoded(items, durability)

    append.tags_json = tags_blob or b"[]"
    return append


_receipt_sec = [None, b""]


def _write_fast_receipts(done, tags_json: bytes, human: bool) -> None:
    """Receipts from ``(seq, time_ns)`` pairs (same text as ``Message.receipt``)."""
    import time

    if human:
        from plasmite_core.envelope import format_rfc3339

        suffix = ""
        if tags_json != b"[]":
            import json

            suffix = "  tags: " + ",".join(json.loads(tags_json))
        sys.stdout.write("".join(f"fed seq={seq} at {format_rfc3339(t)}{suffix}\n" for seq, t in done))
        sys.stdout.flush()
        return
    cache = _receipt_sec
    fmt = b'{"seq":%d,"time":"%s.%09dZ","meta":{"tags":%s}}\n'
    parts = []
    append = parts.append
    for seq, t in done:
        sec, frac = divmod(t, 1_000_000_000)
        if cache[0] != sec:
            cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
            cache[0] = sec
        append(fmt % (seq, cache[1], frac, tags_json))
    out = sys.stdout.buffer
    out.write(b"".join(parts))
    out.flush()


def _parse_inline(data: str):
    import msgspec

    from plasmite_core.errors import UsageError

    try:
        return msgspec.json.decode(data.encode("utf-8", "surrogatepass"))
    except (msgspec.DecodeError, UnicodeEncodeError) as exc:
        raise UsageError(f"invalid JSON in DATA: {exc}",
                         hint="""give one JSON value, quoted for the shell, e.g. '{"x":1}'""") from None


def _write_receipts(msgs, human: bool) -> None:
    out = sys.stdout
    if human:
        lines = []
        for m in msgs:
            tags = m.tags
            t = m.time_rfc3339
            line = f"fed seq={m.seq} at {t}"
            if tags:
                line += f"  tags: {','.join(tags)}"
            lines.append(line + "\n")
        out.write("".join(lines))
        out.flush()
    else:
        buf = out.buffer
        try:
            data = b"".join([m.receipt() + b"\n" for m in msgs])
        except AttributeError:  # a transport's message type without receipt()
            import json

            data = "".join(
                json.dumps({"seq": m.seq, "time": m.time_rfc3339, "meta": {"tags": list(m.tags)}},
                           separators=(",", ":")) + "\n"
                for m in msgs
            ).encode()
        buf.write(data)
        buf.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
