"""The implementation of ``pls feed``, kept free of click.

``plasmite_cli.main`` runs the most common call, ``pls feed POOL DATA``,
straight through ``run_feed`` without building the click application (saving
the click import on the one-shot path); the ``feed`` click command calls the
same function, so both paths behave the same. Streams are parsed by
``plasmite_cli.ingest``; a local JSON pool stores each read's worth of records
with one ``Pool.append_encoded`` call. Each stored message gets a receipt
(``seq``, ``time``, ``meta``, no ``data``): text on a terminal, a JSON line
when stdout is piped.
"""

from __future__ import annotations

import sys
import time

from plasmite_core.rfc3339 import second_bytes

TYPE_CHECKING = False  # typing stays off the one-shot path (start-up cost)
if TYPE_CHECKING:
    from typing import Callable, TypeVar

    T = TypeVar("T")


def run_feed(state, pool: str, data: str | None, *, tags=(), file: str | None = None, in_mode: str = "auto",
             errors: str = "stop", durability: str = "fast", create: bool = False, create_size: str | None = None,
             retry: int = 0, retry_delay: str | None = None, token: str | None = None,
             token_file: str | None = None, tls_ca: str | None = None, tls_skip_verify: bool = False) -> int:
    """Feed DATA, a file or stdin into POOL; returns the exit code."""
    from plasmite_core.errors import UsageError

    from . import parsing, targets

    if create_size is not None and not create:
        raise UsageError("--create-size requires --create", hint="add --create or remove --create-size")
    if retry_delay is not None and retry == 0:
        raise UsageError("--retry-delay requires --retry", hint="add --retry N or remove --retry-delay")
    if data is not None and file is not None:
        raise UsageError("both DATA and --file given", hint="use only one of DATA, --file, or stdin")
    size = parsing.parse_size(create_size, flag="--create-size") if create_size is not None else None
    delay_s = parsing.parse_duration_ms(retry_delay, flag="--retry-delay") / 1000 if retry_delay else 0.05
    from plasmite_core.durability import parse_durability

    dur = parse_durability(durability)
    tag_list = parsing.check_tags(tags)

    stdin_is_tty = _isatty(sys.stdin)
    if data is None and file is None and stdin_is_tty:
        raise UsageError("missing data input", hint="give JSON as DATA, use --file PATH, or pipe JSON to stdin")

    # The input file is opened before the pool, so a missing file is reported
    # as such (Io, as upstream) and not hidden behind a missing pool.
    fh = _open_input(file) if file is not None and file != "-" else None
    try:
        handle = _open_target(state, targets, pool, create, size, token, token_file, tls_ca, tls_skip_verify)
    except BaseException:
        if fh is not None:
            fh.close()
        raise

    out = sys.stdout
    human = _isatty(out)

    if data is not None:
        value = _parse_inline(data)
        msg = with_retry(retry, delay_s, lambda: handle.append(value, tag_list, dur))
        _write_receipts([msg], human)
        return 0

    if fh is not None:
        fd = fh.fileno()
    else:
        fd = sys.stdin.fileno()
    try:
        outcome = ingest_stream(handle, fd, targets.redact(pool), mode=in_mode, errors=errors, tags=tag_list, durability=dur,
                                retries=retry, delay_s=delay_s, receipts=True, human=human, cmd="feed")
    finally:
        if fh is not None:
            fh.close()
    if outcome.total == 0:
        raise UsageError("missing data input: the input held no JSON values",
                         hint="give JSON as DATA, use --file PATH, or pipe JSON to stdin")
    return 1 if outcome.failed else 0


def _open_input(path: str):
    """Open ``--file PATH``; a file that cannot be read is an Io error (exit 8) about that file."""
    try:
        return open(path, "rb")
    except OSError as exc:
        from plasmite_core.errors import IoError

        reason = exc.strerror or str(exc)
        raise IoError(f"cannot read input file {path}: {reason}", path,
                      hint="check the --file path (relative paths start from the current directory), "
                           "or use --file - to read stdin") from None


def _open_target(state, targets, pool: str, create: bool, size, token, token_file, tls_ca, tls_skip_verify):
    if targets.is_http(pool):
        return targets.remote_pool(pool, "feed", token=token, token_file=token_file, tls_ca=tls_ca,
                                   tls_skip_verify=tls_skip_verify, create=create, create_size=size)
    return targets.open_pool(state, pool, "feed", create=create, create_size=size, token=token,
                             token_file=token_file, tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)


def ingest_stream(handle, fd: int, pool_ref: str, *, mode: str, errors: str, tags: list[str], durability,
                  retries: int, delay_s: float, receipts: bool, human: bool, cmd: str, read=None):
    """Parse a stream from ``fd`` (or the ``read(n)`` function given) and append it to ``handle`` in batches."""
    from plasmite_core.errors import PlasmiteError, UsageError

    from . import ingest
    from .output import notice

    if errors == "skip" and mode == "jq":
        raise UsageError("--errors skip is not supported with --in jq: a jq-style stream cannot resynchronise "
                         "after a bad value",
                         hint="use --in jsonl or --in auto (which resynchronise at line starts), or --errors stop")

    append_many = handle.append_many
    append_encoded = _encoded_appender(handle, tags)
    engine = None

    def emit_fast(done: list) -> None:
        if receipts:
            _write_fast_receipts(done, append_encoded.tags_json, human)

    def on_values(values: list) -> None:
        if set(map(type, values)) - _DICT_ONLY:
            i, v = next((i, v) for i, v in enumerate(values) if type(v) is not dict)
            # Store the records before it, then stop (as upstream: whatever --errors says).
            if i:
                on_values(values[:i])
                engine.outcome.ok += i
            _reject_non_object(v, engine.outcome.total + 1)
        if append_encoded is not None:
            # Local JSON pool: encode here and skip building Message objects.
            done = append_encoded(values, durability, retries, delay_s, emit_fast)
            if done is not None:
                emit_fast(done)
                return
        rest = list(values)

        def attempt():
            # A batch larger than half the ring is stored in chunks: when a
            # later chunk fails, print what was stored and retry only the rest.
            try:
                return append_many(rest, tags, durability)
            except PlasmiteError as err:
                done = getattr(err, "committed", None)
                if done:
                    if receipts:
                        _write_receipts(done, human)
                    del rest[: len(done)]
                raise

        msgs = with_retry(retries, delay_s, attempt) if retries else attempt()
        if receipts:
            _write_receipts(msgs, human)

    def on_failure(f: "ingest.Failure") -> None:
        if errors == "stop":
            hint = f.hint or "fix the input, pick the right --in format, or use --errors skip to continue past bad records"
            raise UsageError(f"{f.message} (record {f.index})", hint=hint)
        notice("ingest_skip", cmd, pool_ref,
               "Skipped oversized record." if f.error_kind == "Oversize" else f"Skipped invalid JSON ({f.message}).",
               {**f.details(), "pool_path": str(handle.path)})

    engine = ingest.Ingest(mode, errors, on_values, on_failure)
    outcome = engine.run(read or ingest.reader_for_fd(fd))
    if errors == "skip" and outcome.failed:
        s = "" if outcome.failed == 1 else "s"
        notice("ingest_summary", cmd, pool_ref, f"Finished with {outcome.failed} skipped record{s}.",
               {"total": outcome.total, "ok": outcome.ok, "failed": outcome.failed,
                "pool_path": str(handle.path)})
    return outcome


_DICT_ONLY = {dict}


def _reject_non_object(value, index: int | None = None) -> None:
    """Message data must be a JSON object (upstream's rule): a Usage error naming what was given."""
    from plasmite_core.appending import require_object
    from plasmite_core.errors import UsageError

    try:
        require_object(value)
    except UsageError as err:
        where = "" if index is None else f" (record {index})"
        raise UsageError(f"{err.message}{where}",
                         hint="""wrap the value in an object, e.g. '{"value":[1,2,3]}', or use jq to build one""") from None


def _encoded_appender(handle, tags: list[str]):
    """For a local pool storing compact JSON: ``append(values, ..., emit) -> [(seq, time_ns)]``
    (``emit`` receives the receipts of chunks stored before a failure).

    Uses ``append_encoded`` (declared as ``Capability.ENCODED_APPEND``) with
    payloads encoded here. Returns None for other pools (remote, other codecs), or returns None from a call whose
    values it cannot encode, so the caller falls back to ``append_many`` and
    its error reporting.
    """
    import msgspec
    from plasmite_core.errors import PlasmiteError

    from plasmite_core.protocols import Capability

    if handle.codec != "json" or Capability.ENCODED_APPEND not in handle.capabilities:
        return None
    if any(not isinstance(t, str) or not t for t in tags):
        return None  # let append_many report the bad tag
    tags_blob = msgspec.json.encode(tags) if tags else b""
    if len(tags_blob) > 0xFFFF:
        return None
    enc = msgspec.json.Encoder().encode
    append_encoded = handle.append_encoded

    def append(values: list, durability, retries: int, delay_s: float, emit: Callable[[list], None]):
        try:
            items = [(tags_blob, enc(v)) for v in values]
        except (RecursionError, msgspec.EncodeError, TypeError, ValueError, OverflowError):
            return None

        def attempt():
            # Receipts of chunks stored before a failure are printed (and not
            # stored again by a retry).
            try:
                return append_encoded(items, durability)
            except PlasmiteError as err:
                done = getattr(err, "committed", None)
                if done:
                    emit(done)
                    del items[: len(done)]
                raise

        return with_retry(retries, delay_s, attempt) if retries else attempt()

    append.tags_json = tags_blob or b"[]"
    return append


def _write_fast_receipts(done, tags_json: bytes, human: bool) -> None:
    """Receipts from ``(seq, time_ns)`` pairs (same text as ``Message.receipt``)."""
    if human:
        suffix = ""
        if tags_json != b"[]":
            import json

            suffix = "  tags: " + ",".join(json.loads(tags_json))
        lines = []
        for seq, t in done:
            sec, frac = divmod(t, 1_000_000_000)
            lines.append(f"fed seq={seq} at {second_bytes(sec).decode()}.{frac:09d}Z{suffix}\n")
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        return
    fmt = b'{"seq":%d,"time":"%s.%09dZ","meta":{"tags":%s}}\n'
    parts = []
    append = parts.append
    for seq, t in done:
        sec, frac = divmod(t, 1_000_000_000)
        append(fmt % (seq, second_bytes(sec), frac, tags_json))
    out = sys.stdout.buffer
    out.write(b"".join(parts))
    out.flush()


def _parse_inline(data: str):
    import msgspec

    from plasmite_core.errors import UsageError

    try:
        value = msgspec.json.decode(data.encode("utf-8", "surrogatepass"))
    except RecursionError:
        raise UsageError("invalid JSON in DATA: nested too deeply",
                         hint="flatten the value (at most a few hundred levels of nesting)") from None
    except (msgspec.DecodeError, UnicodeEncodeError) as exc:
        raise UsageError(f"invalid JSON in DATA: {exc}",
                         hint="""give one JSON object, quoted for the shell, e.g. '{"x":1}'""") from None
    if type(value) is not dict:
        _reject_non_object(value)
    return value


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


def is_retryable(err: BaseException) -> bool:
    from plasmite_core.errors import ErrorKind, PlasmiteError

    if not isinstance(err, PlasmiteError):
        return False
    if err.kind == ErrorKind.BUSY:
        return True
    if err.kind == ErrorKind.IO:
        import errno

        cause = err.__cause__
        return isinstance(cause, OSError) and cause.errno in (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT)
    return False


def with_retry(retries: int, delay_s: float, fn: Callable[[], T]) -> T:
    """Call ``fn``; on a transient failure (Busy, EAGAIN) retry up to ``retries`` times."""
    attempt = 0
    waited = 0.0
    while True:
        try:
            return fn()
        except Exception as err:
            if attempt < retries and is_retryable(err):
                attempt += 1
                time.sleep(delay_s)
                waited += delay_s
                continue
            if attempt:
                note = f"gave up after {attempt} retries ({int(waited * 1000)} ms)"
                hint = getattr(err, "hint", None)
                try:
                    err.hint = f"{hint}; {note}" if hint else note  # type: ignore[attr-defined]
                except AttributeError:
                    pass
            raise
