"""Gateway settings from Plasma's environment variables and from flags.

A Plasma deployment's environment must work unchanged, so the names are
Plasma's (``PLASMA_PORT``, ``PLASMA_SUBSCRIBER_REDIS_CHANNELS``, ...), including
the spellings its own Helm chart and compose file use (``PLASMA_GRPC_PORT`` as
well as envconfig's ``PLASMA_GRPCPORT``). Everything is parsed and checked
before anything binds: an unknown ``PLASMA_*`` name or a bad value is a
``UsageError`` naming the variable, never a traceback later.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

from plasmite_core.errors import UsageError

LOG_LEVELS = ("debug", "info", "warn", "error", "dpanic", "panic", "fatal")
TYPE_SOURCES = ("meta", "tag")
SUBSCRIBER_TYPES = ("pool", "redis")
RETRY_BEHAVIORS = ("alive", "die")

# Plasma settings this gateway accepts but has no use for (pprof and the
# log/syslog metrics senders): a deployment may keep them set.
IGNORED = re.compile(r"^PLASMA_(PPROF_|METRICS_(TYPE|INTERVAL|LOG_|SYSLOG_|SYS_LOG_)|MOCK_|SUBSCRIBER_MOCK_)")


def _bool(text: str) -> bool:
    # Go's strconv.ParseBool, which Plasma's envconfig uses.
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError("expected true or false")


def _port(text: str) -> int:
    n = int(text)
    if not 0 <= n <= 65535:
        raise ValueError("expected a port number 0-65535")
    return n


def _nonneg(text: str) -> int:
    n = int(text)
    if n < 0:
        raise ValueError("expected a non-negative integer")
    return n


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise ValueError("expected a positive integer")
    return n


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (``1s``, ``500ms``, ``1m30s``), as Plasma takes them."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            raise ValueError("expected a duration such as 1s, 500ms or 1m30s")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError("expected a duration such as 1s, 500ms or 1m30s")
    return total


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return text

    return parse


def _level(text: str) -> str:
    return _choice(LOG_LEVELS)(text.lower())


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _text(text: str) -> str:
    return text


@dataclass
class PlasmaConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    grpc_port: int = 50051
    metrics_port: int = 9999
    debug: bool = False
    origin: str = ""
    sse_retry: int = 2000
    sse_event_query: str = "eventType"
    sse_heartbeat: float = 10.0
    max_event_types: int = 100
    pools: list[str] = field(default_factory=lambda: ["plasma"])
    pool_dir: str | None = None
    type_from: str = "meta"
    subscriber_type: str = "pool"
    redis_addr: str = "localhost:6379"
    redis_password: str = ""
    redis_db: int = 0
    redis_channels: list[str] = field(default_factory=list)
    redis_over_max_retry_behavior: str = "alive"
    redis_max_retry: int = 5
    redis_timeout: float = 1.0
    redis_retry_interval: float = 5.0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    access_log_out: str = "stdout"
    access_log_level: str = "debug"
    error_log_out: str = "stderr"
    error_log_level: str = "debug"

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)


# field -> (environment names, first is the documented one; parser)
SETTINGS: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "host": (("PLASMA_HOST",), _text),
    "port": (("PLASMA_PORT",), _port),
    "grpc_port": (("PLASMA_GRPC_PORT", "PLASMA_GRPCPORT"), _port),
    "metrics_port": (("PLASMA_METRICS_PORT", "PLASMA_MERTICSPORT", "PLASMA_METRICSPORT"), _port),
    "debug": (("PLASMA_DEBUG",), _bool),
    "origin": (("PLASMA_ORIGIN",), _text),
    "sse_retry": (("PLASMA_SSE_RETRY",), _nonneg),
    "sse_event_query": (("PLASMA_SSE_EVENTQUERY", "PLASMA_SSE_EVENT_QUERY"), _text),
    "sse_heartbeat": (("PLASMA_SSE_HEARTBEAT",), parse_duration),
    "max_event_types": (("PLASMA_MAX_EVENT_TYPES",), _positive),
    "pools": (("PLASMA_POOLS",), _list),
    "pool_dir": (("PLASMA_POOL_DIR",), _text),
    "type_from": (("PLASMA_TYPE_FROM",), _choice(TYPE_SOURCES)),
    "subscriber_type": (("PLASMA_SUBSCRIBER_TYPE",), _text),
    "redis_addr": (("PLASMA_SUBSCRIBER_REDIS_ADDR",), _text),
    "redis_password": (("PLASMA_SUBSCRIBER_REDIS_PASSWORD",), _text),
    "redis_db": (("PLASMA_SUBSCRIBER_REDIS_DB",), _nonneg),
    "redis_channels": (("PLASMA_SUBSCRIBER_REDIS_CHANNELS",), _list),
    "redis_over_max_retry_behavior": (("PLASMA_SUBSCRIBER_REDIS_OVER_MAX_RETRY_BEHAVIOR",), _choice(RETRY_BEHAVIORS)),
    "redis_max_retry": (("PLASMA_SUBSCRIBER_REDIS_MAX_RETRY", "PLASMA_SUBSCRIBER_REDIS_MAXRETRY"), _positive),
    "redis_timeout": (("PLASMA_SUBSCRIBER_REDIS_TIMEOUT",), parse_duration),
    "redis_retry_interval": (
        ("PLASMA_SUBSCRIBER_REDIS_RETRY_INTERVAL", "PLASMA_SUBSCRIBER_REDIS_RETRY_INTERBAL"),
        parse_duration,
    ),
    "tls_cert_file": (("PLASMA_TLS_CERT_FILE",), _text),
    "tls_key_file": (("PLASMA_TLS_KEY_FILE",), _text),
    "access_log_out": (("PLASMA_ACCESS_LOG_OUT",), _text),
    "access_log_level": (("PLASMA_ACCESS_LOG_LEVEL",), _level),
    "error_log_out": (("PLASMA_ERROR_LOG_OUT",), _text),
    "error_log_level": (("PLASMA_ERROR_LOG_LEVEL",), _level),
}

_KNOWN = {name: key for key, (names, _) in SETTINGS.items() for name in names}


def resolve(environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> PlasmaConfig:
    """Environment first, flags over it; every value checked here."""
    cfg = PlasmaConfig()
    for name, raw in sorted(environ.items()):
        if not name.startswith("PLASMA_") or IGNORED.match(name):
            continue
        key = _KNOWN.get(name)
        if key is None:
            close = difflib.get_close_matches(name, list(_KNOWN), n=1)
            hint = f"did you mean {close[0]}?" if close else "see docs/plasma.md for the supported names"
            raise UsageError(f"unknown setting {name}", hint=hint)
        if raw == "" and key not in ("origin", "redis_password", "tls_cert_file", "tls_key_file"):
            continue  # envconfig treats an empty variable as unset
        setattr(cfg, key, _parse(name, SETTINGS[key][1], raw))
    for key, value in (flags or {}).items():
        if value is None:
            continue
        parser = SETTINGS[key][1]
        if isinstance(value, str) and parser is not _text:
            value = _parse("--" + key.replace("_", "-"), parser, value)
        setattr(cfg, key, value)
    _check(cfg)
    return cfg


def _parse(name: str, parser: Callable[[str], Any], raw: str) -> Any:
    try:
        return parser(raw)
    except ValueError as exc:
        detail = str(exc) if not str(exc).startswith("invalid literal") else "expected an integer"
        raise UsageError(f"invalid {name}={raw!r}: {detail}") from None


def _check(cfg: PlasmaConfig) -> None:
    if cfg.subscriber_type == "mock":
        raise UsageError(
            "PLASMA_SUBSCRIBER_TYPE=mock (Plasma's fake event source) is not offered",
            hint="use pool (the default: publish into the pools) or redis",
        )
    if cfg.subscriber_type not in SUBSCRIBER_TYPES:
        raise UsageError(f"unknown subscriber type {cfg.subscriber_type!r}", hint="use pool or redis")
    if cfg.subscriber_type == "redis" and not cfg.redis_channels:
        raise UsageError(
            "PLASMA_SUBSCRIBER_TYPE=redis needs at least one channel",
            hint="set PLASMA_SUBSCRIBER_REDIS_CHANNELS, e.g. plasma",
        )
    if not cfg.pools:
        raise UsageError("no pool to follow", hint="set PLASMA_POOLS or pass --pool NAME")
    if bool(cfg.tls_cert_file) != bool(cfg.tls_key_file):
        raise UsageError(
            "TLS needs both a certificate and a key",
            hint="set PLASMA_TLS_CERT_FILE and PLASMA_TLS_KEY_FILE together (or neither)",
        )
    if not cfg.sse_event_query:
        raise UsageError("PLASMA_SSE_EVENTQUERY must not be empty")
    if cfg.sse_heartbeat <= 0:
        raise UsageError("PLASMA_SSE_HEARTBEAT must be positive")
    if cfg.redis_timeout <= 0 or cfg.redis_retry_interval < 0:
        raise UsageError("Redis timeout must be positive and the retry interval non-negative")


def describe(cfg: PlasmaConfig) -> dict[str, Any]:
    """Settings for the start-up log line, secrets masked."""
    out = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    if out["redis_password"]:
        out["redis_password"] = "***"
    return out
