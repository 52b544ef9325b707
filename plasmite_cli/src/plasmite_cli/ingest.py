"""Turn a byte stream (stdin, a file) into JSON values for ``feed`` and ``duplex``.

Input modes:

- ``jsonl``: one JSON value per line; blank lines are ignored.
- ``json``: exactly one JSON value (a document, pretty or compact); a second
  value is an error, so nothing of a misread stream is stored.
- ``jq``: a stream of JSON values in any layout, pretty-printed, compact or
  concatenated, separated by optional whitespace (what ``jq``, ``jq -c`` and
  ``jq --stream`` print). It cannot resynchronise after a bad value, so
  ``--errors skip`` is refused.
- ``json-seq`` (alias ``seq``): RFC 7464 text sequences, each record introduced
  by the 0x1E record separator, as ``journalctl -o json-seq`` emits them.
- ``event``: Server-Sent Events ``data:`` lines (what ``curl -N`` prints for an
  event stream); each event's data is one JSON value.
- ``auto`` (default): sniffed from the first chunk: a 0x1E byte means
  json-seq, a first line starting with ``data:``/``event:``/``id:``/``:`` means
  an event stream, otherwise JSON Lines that also accepts a value spread over
  several lines (pretty JSON) and several values on one line, including one
  that starts where a multi-line value ends (``{"a":\n 3}{"a":4}``).

Values are handed over in batches: everything complete in one read of the
input goes to one ``Pool.append_many`` call, so a fast producer is stored with
one lock per batch while a slow, live producer (``journalctl -f``) sees each
record stored as soon as it arrives. The hot path decodes each line with
msgspec in a list comprehension and only falls back to the careful per-line
path when a line does not parse on its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

READ_SIZE = 1 << 18
MAX_RECORD_BYTES = 1 << 20
SNIPPET_BYTES = 200
RS = b"\x1e"

_decode = msgspec.json.decode
_DecodeError = msgspec.DecodeError
# What a rejected record raises: bad JSON, bad UTF-8, or nesting deeper than
# the decoders recurse (RecursionError).
_BAD = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


@dataclass
class Failure:
    """One rejected input record."""

    index: int
    mode: str
    message: str
    error_kind: str  # "Parse" | "Oversize"
    line: int | None = None
    snippet: str | None = None
    hint: str | None = None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "index": self.index, "error_kind": self.error_kind}
        if self.line is not None:
            out["line"] = self.line
        if self.snippet is not None:
            out["snippet"] = self.snippet
        return out


@dataclass
class Outcome:
    ok: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + self.failed


def _snippet(buf: bytes | str) -> str:
    if isinstance(buf, bytes):
        buf = buf[:SNIPPET_BYTES].decode("utf-8", "replace")
    return buf[:SNIPPET_BYTES]


def _looks_like_start(line: bytes) -> bool:
    s = line.lstrip()
    return s[:1] in (b"{", b"[")


def detect_mode(prefix: bytes) -> str:
    if RS in prefix:
        return "json-seq"
    for raw in prefix.split(b"\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith((b"data:", b"event:", b"id:", b":")):
            return "event"
        break
    return "jsonl"


class Ingest:
    """Parse ``read(n) -> bytes`` input and deliver batches of values.

    ``on_values(list)`` receives parsed values in input order. ``on_failure``
    receives each rejected record; under ``errors="stop"`` the values parsed
    before it are delivered first and then the failure is raised by the caller's
    callback (it decides the error type).
    """

    def __init__(
        self,
        mode: str,
        errors: str,
        on_values: Callable[[list], None],
        on_failure: Callable[[Failure], None],
    ) -> None:
        if mode == "seq":
            mode = "json-seq"
        self.mode = mode
        self.errors = errors
        self._on_values = on_values
        self._on_failure = on_failure
        self.outcome = Outcome()
        self._pending: list[Any] = []
        self._index = 0
        self._json_lines_done = 0  # lines consumed by the json-stream parser

    # -- delivery ---------------------------------------------------------
    def _flush(self) -> None:
        if self._pending:
            values, self._pending = self._pending, []
            self._on_values(values)
            self.outcome.ok += len(values)

    def _fail(self, mode: str, message: str, kind: str, line: int | None, snippet: bytes | str | None,
              hint: str | None = None) -> None:
        self._index += 1
        failure = Failure(self._index, mode, message, kind, line, None if snippet is None else _snippet(snippet), hint)
        self._flush()
        self.outcome.failed += 1
        self._on_failure(failure)

    def _accept(self, value: Any) -> None:
        self._index += 1
        self._pending.append(value)

    # -- driver -----------------------------------------------------------
    def run(self, read: Callable[[int], bytes]) -> Outcome:
        first = read(READ_SIZE)
        mode = self.mode
        if mode == "auto":
            mode = detect_mode(first[:8192])
            multi = True
        else:
            multi = False
        if mode == "jsonl":
            self._run_lines(first, read, multi)
        elif mode == "json":
            self._run_single_json(first, read)
        elif mode == "jq":
            self._run_json_stream(first, read)
        elif mode == "json-seq":
            self._run_seq(first, read)
        elif mode == "event":
            self._run_events(first, read)
        else:  # pragma: no cover - click restricts the choices
            raise ValueError(mode)
        self._flush()
        return self.outcome

    # -- JSON Lines (with the auto-mode multi-line fallback) ---------------
    def _run_lines(self, chunk: bytes, read, multi: bool) -> None:
        leftover = b""
        line_no = 0
        discarding = False  # inside an oversized line: drop bytes up to its newline
        self._acc: list[bytes] | None = None  # lines of a value spread over several lines
        self._acc_line = 0
        dec = _decode
        limit = MAX_RECORD_BYTES
        while chunk:
            if discarding:
                nl = chunk.find(b"\n")
                if nl < 0:
                    chunk = read(READ_SIZE)
                    continue
                chunk = chunk[nl + 1 :]
                discarding = False
                line_no += 1
            buf = leftover + chunk if leftover else chunk
            lines = buf.split(b"\n")
            leftover = lines.pop()
            if len(leftover) > limit:
                # An unfinished line already over the limit: reject it now and
                # skip the rest of it instead of buffering it.
                self._fail("jsonl", "record exceeds the 1 MiB size limit", "Oversize", line_no + len(lines) + 1,
                           leftover)
                leftover = b""
                discarding = True
            if self._acc is None and (len(buf) <= limit or max(map(len, lines), default=0) <= limit):
                try:
                    values = [dec(x) for x in lines if x]
                except _BAD:
                    values = None
                if values is not None:
                    self._index += len(values)
                    self._pending.extend(values)
                    line_no += len(lines)
                    self._flush()
                    chunk = read(READ_SIZE)
                    continue
            for line in lines:
                line_no += 1
                self._line(line, line_no, multi)
            self._flush()
            chunk = read(READ_SIZE)
        if leftover:
            line_no += 1
            self._line(leftover, line_no, multi)
        if self._acc is not None:
            text = b"\n".join(self._acc)
            self._acc = None
            self._fail("jsonl", "invalid JSON: input ended inside a value", "Parse", self._acc_line, text)

    def _line(self, line: bytes, line_no: int, multi: bool) -> None:
        acc = self._acc
        if acc is not None:
            if self.errors == "skip" and _looks_like_start(line) and not line[:1].isspace():
                # A new top-level value starts: give up on the unfinished one.
                text = b"\n".join(acc)
                self._acc = None
                self._fail("jsonl", "invalid JSON", "Parse", self._acc_line, text)
                self._line(line, line_no, multi)
                return
            acc.append(line)
            text = b"\n".join(acc)
            try:
                value = _decode(text)
            except _DecodeError as exc:
                if "trailing characters" in str(exc) and self._drain_acc(text, line_no, multi):
                    return
                if len(text) > MAX_RECORD_BYTES:
                    self._acc = None
                    self._fail("jsonl", "record exceeds the 1 MiB size limit", "Oversize", self._acc_line, text)
                return
            except _BAD:
                if len(text) > MAX_RECORD_BYTES:
                    self._acc = None
                    self._fail("jsonl", "record exceeds the 1 MiB size limit", "Oversize", self._acc_line, text)
                return
            self._acc = None
            self._accept(value)
            return
        if not line.strip():
            return
        if len(line) > MAX_RECORD_BYTES:
            self._fail("jsonl", "record exceeds the 1 MiB size limit", "Oversize", line_no, line)
            return
        try:
            self._accept(_decode(line))
            return
        except RecursionError:
            self._fail("jsonl", f"invalid JSON on line {line_no}: nested too deeply", "Parse", line_no, line)
            return
        except _BAD:
            pass
        if multi:
            values = _split_concatenated(line)
            if values is not None:
                for v in values:
                    self._accept(v)
                return
            if _looks_like_start(line):
                self._acc = [line]
                self._acc_line = line_no
                return
        self._fail("jsonl", f"invalid JSON on line {line_no}", "Parse", line_no, line)

    def _drain_acc(self, text: bytes, line_no: int, multi: bool) -> bool:
        """The accumulated lines hold a complete value followed by more input
        (``{"a":\n 3}{"a":4}``): accept the complete values and keep
        accumulating an unfinished last one. False if the text does not start
        with a complete value."""
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return False
        values, pos = _leading_values(decoded)
        if not values:
            return False
        self._acc = None
        for v in values:
            self._accept(v)
        rest = decoded[pos:]
        if rest.strip():
            self._line(rest.encode("utf-8"), line_no, multi)
        return True

    # -- exactly one JSON value ---------------------------------------------
    def _run_single_json(self, chunk: bytes, read) -> None:
        parts, size = [], 0
        while chunk:
            size += len(chunk)
            if size > MAX_RECORD_BYTES:
                while read(READ_SIZE):  # consume the rest of the input unstored
                    pass
                self._fail("json", "record exceeds the 1 MiB size limit", "Oversize", None, b"".join(parts) or chunk)
                return
            parts.append(chunk)
            chunk = read(READ_SIZE)
        buf = b"".join(parts)
        if not buf.strip():
            return
        try:
            self._accept(_decode(buf))
            return
        except RecursionError:
            self._fail("json", "invalid JSON: nested too deeply", "Parse", None, buf)
            return
        except _BAD as exc:
            trailing = isinstance(exc, _DecodeError) and "trailing characters" in str(exc)
        if trailing:
            self._fail("json", "--in json takes exactly one JSON value; the input holds more than one", "Parse",
                       None, buf, hint="use --in jq (or the default auto) for a stream of values; nothing was stored")
        else:
            self._fail("json", "truncated or malformed JSON document", "Parse", None, buf)

    # -- concatenated / pretty JSON stream (--in jq) --------------------------
    def _run_json_stream(self, chunk: bytes, read) -> None:
        decoder = json.JSONDecoder()
        raw = b""
        text = ""
        pos = 0
        eof = not chunk
        pending_bytes = chunk
        while True:
            if pending_bytes:
                raw += pending_bytes
                # Decode only complete UTF-8 sequences; keep a partial tail.
                try:
                    text_part = raw.decode("utf-8")
                    raw = b""
                except UnicodeDecodeError as exc:
                    if exc.start >= len(raw) - 3 and not eof:
                        text_part = raw[: exc.start].decode("utf-8")
                        raw = raw[exc.start :]
                    else:
                        text_part = raw.decode("utf-8", "replace")
                        raw = b""
                text = text[pos:] + text_part
                pos = 0
            # Parse as many complete values as the buffer holds.
            n = len(text)
            while True:
                while pos < n and text[pos] in " \t\r\n":
                    pos += 1
                if pos >= n:
                    break
                try:
                    value, end = decoder.raw_decode(text, pos)
                except RecursionError:
                    line = text.count("\n", 0, pos) + 1 + self._json_lines_done
                    self._fail("jq", f"invalid JSON near line {line}: nested too deeply", "Parse", line,
                               text[pos : pos + SNIPPET_BYTES])
                    return
                except json.JSONDecodeError as exc:
                    if not eof and n - pos <= MAX_RECORD_BYTES:
                        break  # probably incomplete: read more
                    kind = "Oversize" if n - pos > MAX_RECORD_BYTES else "Parse"
                    line = text.count("\n", 0, exc.pos) + 1 + self._json_lines_done
                    msg = "record exceeds the 1 MiB size limit" if kind == "Oversize" else f"invalid JSON near line {line}: {exc.msg}"
                    self._fail("jq", msg, kind, line, text[pos : pos + SNIPPET_BYTES])
                    return  # a JSON stream cannot be resynchronised
                if end == n and not eof and text[pos] not in "{[\"":
                    break  # a bare number at the end of the buffer may continue
                self._accept(value)
                pos = end
            self._flush()
            if eof:
                break
            self._json_lines_done += text.count("\n", 0, pos)
            pending_bytes = read(READ_SIZE)
            if not pending_bytes:
                eof = True
                if raw:
                    pending_bytes, raw = raw, b""
                    text = text[pos:] + pending_bytes.decode("utf-8", "replace")
                    pos = 0
                    pending_bytes = b""

    # -- RFC 7464 json-seq --------------------------------------------------
    def _run_seq(self, chunk: bytes, read) -> None:
        buf = b""
        skipping = False  # dropping the rest of an oversized record
        while chunk:
            if skipping:
                idx = chunk.find(RS)
                if idx < 0:
                    chunk = read(READ_SIZE)
                    continue
                chunk, skipping = chunk[idx:], False
            buf += chunk
            parts = buf.split(RS)
            buf = parts.pop()
            for rec in parts:
                self._seq_record(rec)
            # A LF-terminated record that parses is complete (RFC 7464): deliver
            # it now so a live producer is not held back until its next record.
            if buf.endswith(b"\n") and buf.strip():
                try:
                    value = _decode(buf)
                except _BAD:
                    value = _NOPE
                if value is not _NOPE:
                    self._accept(value)
                    buf = b""
            if len(buf) > MAX_RECORD_BYTES:
                self._fail("json-seq", "record exceeds the 1 MiB size limit", "Oversize", None, buf)
                buf, skipping = b"", True
            self._flush()
            chunk = read(READ_SIZE)
        if buf.strip():
            self._seq_record(buf)

    def _seq_record(self, rec: bytes) -> None:
        if not rec.strip():
            return
        if len(rec) > MAX_RECORD_BYTES:
            self._fail("json-seq", "record exceeds the 1 MiB size limit", "Oversize", None, rec)
            return
        try:
            self._accept(_decode(rec))
        except _BAD:
            self._fail("json-seq", "invalid JSON record", "Parse", None, rec)

    # -- Server-Sent Events -------------------------------------------------
    def _run_events(self, chunk: bytes, read) -> None:
        leftover = b""
        data: list[bytes] = []
        line_no = 0

        def finish() -> None:
            payload = b"\n".join(data)
            data.clear()
            try:
                self._accept(_decode(payload))
            except _BAD:
                self._fail("event", "invalid JSON in event data", "Parse", line_no, payload)

        while chunk:
            buf = leftover + chunk
            lines = buf.split(b"\n")
            leftover = lines.pop()
            for line in lines:
                line_no += 1
                line = line.rstrip(b"\r")
                if not line:
                    if data:
                        finish()
                    continue
                if line.startswith(b"data:"):
                    rest = line[5:]
                    data.append(rest[1:] if rest.startswith(b" ") else rest)
                    if sum(map(len, data)) > MAX_RECORD_BYTES:
                        self._fail("event", "record exceeds the 1 MiB size limit", "Oversize", line_no, b"\n".join(data))
                        data.clear()
            self._flush()
            chunk = read(READ_SIZE)
        if leftover.rstrip(b"\r").startswith(b"data:"):
            rest = leftover.rstrip(b"\r")[5:]
            data.append(rest[1:] if rest.startswith(b" ") else rest)
        if data:
            finish()


_NOPE = object()


def _split_concatenated(line: bytes) -> list | None:
    """``{"a":1} {"b":2}`` on one line → two values; None if not that shape."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    values, pos = _leading_values(text)
    return values if pos >= len(text) and len(values) > 1 else None


def _leading_values(text: str) -> tuple[list, int]:
    """The complete JSON values at the start of ``text`` (white space between
    them skipped), and where the first text that is not one starts."""
    decoder = json.JSONDecoder()
    pos, n, values = 0, len(text), []
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return values, pos
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return values, pos
        values.append(value)


def reader_for_fd(fd: int) -> Callable[[int], bytes]:
    """``os.read`` on a descriptor: returns whatever is available (live pipes)."""

    def read(n: int) -> bytes:
        while True:
            try:
                return os.read(fd, n)
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue

    return read
