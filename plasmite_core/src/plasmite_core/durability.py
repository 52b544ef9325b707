"""Durability: when an append returns (``fast``: after publishing; ``flush``:
after the pool file's pages reached the disk). One parser for every surface
(Python API, CLI flags, HTTP bodies and query strings)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from .errors import UsageError


class Durability(IntEnum):
    FAST = 0
    FLUSH = 1


_NAMES = {"fast": Durability.FAST, "flush": Durability.FLUSH}


def parse_durability(value: Any) -> Durability:
    """``Durability`` from an enum member, 0/1, None (fast) or "fast"/"flush"."""
    if value is None:
        return Durability.FAST
    if isinstance(value, str):
        found = _NAMES.get(value.strip().lower())
        if found is not None:
            return found
    elif isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return Durability(value)
    raise UsageError(f"invalid durability {value!r}", hint='use "fast" (default) or "flush"')


def durability_name(value: Any) -> str:
    """``"fast"`` or ``"flush"``: the wire spelling."""
    return "flush" if parse_durability(value) is Durability.FLUSH else "fast"
