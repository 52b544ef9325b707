"""Parsers for the CLI's small value languages: sizes, durations, ``--since``.

They raise the core's ``UsageError`` with a hint, so a typo in a flag reads the
same as any other usage mistake (exit 2, JSON envelope when piped).
"""

from __future__ import annotations

import re

from plasmite_core.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str, *, flag: str = "--size") -> int:
    """``64K``, ``8M``, ``1G``, ``1T`` (1024-based) or plain bytes; the core checks the pool limits."""
    m = _SIZE.match(text or "")
    if not m:
        raise UsageError(f"invalid {flag} value: {text!r}", hint="use bytes or K/M/G/T, e.g. 64K, 8M, 1G (a pool is 64K to 1T)")
    value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise UsageError(f"{flag} must be positive", hint="e.g. 1M")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DUR_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str, *, flag: str = "--timeout") -> float:
    """``500ms``, ``5s``, ``2m``, ``1h``, ``1d`` → milliseconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise UsageError(
            f"invalid {flag} duration: {text!r}",
            hint="use a number plus ms|s|m|h|d, e.g. 500ms, 5s, 2m",
        )
    return float(m.group(1)) * _DUR_MS[m.group(2)]


_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdSMHD])\s*$")
_REL_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ns: int) -> int:
    """``30m``/``2h``/``1d`` ago, or an RFC 3339 time → nanoseconds since the epoch."""
    m = _RELATIVE.match(text or "")
    if m:
        return max(0, now_ns - int(m.group(1)) * _REL_S[m.group(2).lower()] * 1_000_000_000)
    from plasmite_core.envelope import parse_rfc3339

    try:
        return parse_rfc3339(text)
    except UsageError:
        raise UsageError(
            f"invalid --since value: {text!r}",
            hint="use a relative age like 30m, 2h, 1d or RFC 3339 like 2026-01-15T10:00:00Z",
        ) from None


def check_tags(tags) -> list[str]:
    """``--tag`` values: each must name something (an empty tag matches nothing useful)."""
    out = list(tags)
    if any(not t for t in out):
        raise UsageError("empty --tag value", hint="give each --tag a name, e.g. --tag alert, or drop the empty one")
    return out
