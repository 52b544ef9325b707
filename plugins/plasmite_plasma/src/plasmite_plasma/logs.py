"""Access and error logs as Plasma writes them: one JSON object per line, to
stdout, stderr, a file, or ``discard`` (``PLASMA_ACCESS_LOG_OUT`` / ``..._LEVEL``,
``PLASMA_ERROR_LOG_OUT`` / ``..._LEVEL``). Extra fields travel in
``extra={"fields": {...}}``."""

from __future__ import annotations

import json
import logging
import sys
import time

from plasmite_core.errors import UsageError

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
           "dpanic": logging.CRITICAL, "panic": logging.CRITICAL, "fatal": logging.CRITICAL}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
          logging.CRITICAL: "fatal"}


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"level": _NAMES.get(record.levelno, record.levelname.lower()), "ts": round(record.created, 6),
               "logger": record.name.rsplit(".", 1)[-1], "msg": record.getMessage()}
        out.update(getattr(record, "fields", None) or {})
        return json.dumps(out, default=str, ensure_ascii=False)


def make_logger(kind: str, out: str, level: str, ident: str) -> logging.Logger:
    """``kind`` is access or error; ``ident`` keeps gateways in one process apart."""
    log = logging.getLogger(f"plasmite_plasma.{ident}.{kind}")
    log.propagate = False
    log.setLevel(_LEVELS[level])
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    if out == "stdout":
        handler: logging.Handler = logging.StreamHandler(sys.stdout)
    elif out == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    elif out == "discard":
        handler = logging.NullHandler()
    else:
        try:
            handler = logging.FileHandler(out, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot open the {kind} log {out}: {exc.strerror}",
                             hint="use stdout, stderr, discard or a writable file path") from None
    handler.setFormatter(_JsonLines())
    log.addHandler(handler)
    return log


def request_fields(scope: dict, status: int, started: float) -> dict:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    client = scope.get("client") or ("", 0)
    return {
        "status": status,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "query": scope.get("query_string", b"").decode("latin-1"),
        "host": headers.get("host", ""),
        "user-agent": headers.get("user-agent", ""),
        "referer": headers.get("referer", ""),
        "remote-addr": headers.get("x-forwarded-for") or client[0],
        "duration_ms": round((time.monotonic() - started) * 1000, 3),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
