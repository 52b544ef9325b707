"""Terminal-aware output shared by every command.

Machine output must stay stable when a command is piped, and people at a
terminal should get something readable: errors and notices are concise text on
a terminal and one JSON object per line otherwise, ``--json`` output is pretty
on a terminal and compact when piped. Kept free of heavy imports because every
invocation loads it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

_color_mode = "auto"


def set_color_mode(mode: str) -> None:
    global _color_mode
    _color_mode = mode


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def use_color(stream: Any) -> bool:
    if _color_mode == "always":
        return True
    if _color_mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return isatty(stream)


def color_json_out() -> bool:
    """``--color always`` also colours JSON on stdout (``auto`` keeps it plain, so text
    copied from a terminal is valid JSON)."""
    return _color_mode == "always"


_JSON_TOKEN = None


def colorize_json(text: bytes) -> bytes:
    """ANSI colours for JSON text: keys blue, strings green, numbers cyan, literals magenta."""
    global _JSON_TOKEN
    if _JSON_TOKEN is None:
        import re

        _JSON_TOKEN = re.compile(
            rb'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b')

    def paint(m) -> bytes:
        if m.group(1) is not None:
            code = b"34" if m.group(2) else b"32"
            return b"\x1b[" + code + b"m" + m.group(1) + b"\x1b[0m" + (m.group(2) or b"")
        code = b"36" if m.group(3) is not None else b"35"
        return b"\x1b[" + code + b"m" + m.group(0) + b"\x1b[0m"

    return _JSON_TOKEN.sub(paint, text)


def _label(text: str, code: str, stream: Any) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if use_color(stream) else text


def dumps(obj: Any, *, pretty: bool = False) -> str:
    import json

    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def emit_json(obj: Any, *, pretty: bool | None = None) -> None:
    """One JSON document on stdout: pretty on a terminal, compact when piped."""
    if pretty is None:
        pretty = isatty(sys.stdout)
    text = dumps(obj, pretty=pretty)
    if color_json_out():
        text = colorize_json(text.encode()).decode()
    write_out(text + "\n")


def write_out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def write_err(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def error_dict(err: Any) -> dict[str, Any]:
    """The ``error`` object of the JSON envelope for a PlasmiteError."""
    out = err.to_dict()
    causes = []
    cause = _cause_of(err)
    seen = 0
    while cause is not None and seen < 5:
        text = str(cause).strip()
        if text and text != err.message:
            causes.append(text)
        cause = _cause_of(cause)
        seen += 1
    if causes and "causes" not in out:
        out["causes"] = causes
    return out


def _cause_of(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def render_error(err: Any) -> None:
    """Write a PlasmiteError to stderr: text plus hint on a terminal, JSON otherwise."""
    stream = sys.stderr
    if isatty(stream):
        lines = [f"{_label('error:', '31', stream)} {err.message}"]
        if err.hint:
            lines.append(f"{_label('hint:', '33', stream)} {err.hint}")
        if err.path is not None:
            lines.append(f"{_label('path:', '33', stream)} {err.path}")
        if err.seq is not None:
            lines.append(f"{_label('seq:', '33', stream)} {err.seq}")
        if err.offset is not None:
            lines.append(f"{_label('offset:', '33', stream)} {err.offset}")
        write_err("\n".join(lines) + "\n")
    else:
        write_err(dumps({"error": error_dict(err)}) + "\n")


def notice_time() -> str:
    now = time.time_ns()
    sec, frac = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac // 1000:06d}Z"


def notice(kind: str, cmd: str, pool: str, message: str, details: dict[str, Any] | None = None) -> None:
    """A non-fatal diagnostic on stderr (drops, skipped records, ...).

    Text on a terminal; on a pipe one ``{"notice": {...}}`` JSON line with
    ``kind``, ``time``, ``cmd``, ``pool``, ``message`` and ``details``.
    """
    stream = sys.stderr
    if isatty(stream):
        where = "" if cmd == "feed" else f" (pool: {pool})"
        write_err(f"{_label('notice:', '33', stream)} {message}{where}\n")
    else:
        body = {
            "kind": kind,
            "time": notice_time(),
            "cmd": cmd,
            "pool": pool,
            "message": message,
            "details": details or {},
        }
        write_err(dumps({"notice": body}) + "\n")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain left-aligned text table (no trailing spaces)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_age(age_ms: int | float | None) -> str:
    if age_ms is None:
        return "-"
    s = age_ms / 1000
    if s < 1:
        return "just now"
    for limit, div, unit in ((60, 1, "s"), (3600, 60, "m"), (86400, 3600, "h")):
        if s < limit:
            return f"{int(s // div)}{unit} ago"
    return f"{int(s // 86400)}d ago"
