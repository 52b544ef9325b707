"""The lean path of a one-shot ``pls feed POOL DATA``: no click, no msgspec.

Start-up dominates a one-shot call: importing msgspec alone costs more than a
bare interpreter. For the common case (a local JSON pool and an object made of
strings, integers, booleans, nulls, arrays, objects and floats whose shortest
text has no exponent) the standard library's ``json`` parses and encodes
exactly the bytes msgspec would store, so this path opens the pool file
directly and appends. Anything else (floats written with an exponent, which
msgspec and ``json`` spell differently; huge integers; duplicate keys; another
codec; a URL; any error before the append) returns None and the caller runs
the full ``run_feed``, which reports errors and stores values as always.
"""

from __future__ import annotations

import json
import sys

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


class _NotLean(Exception):
    """The value is outside the subset where ``json`` matches msgspec."""


def _no_constant(text: str):
    raise _NotLean  # NaN, Infinity


def _float(text: str) -> float:
    f = float(text)
    r = repr(f)
    if "e" in r or "n" in r:  # exponent, inf, nan: msgspec writes these its own way
        raise _NotLean
    return f


def _int(text: str) -> int:
    n = int(text)
    if n < _INT_MIN or n > _INT_MAX:
        raise _NotLean
    return n


def _pairs(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _NotLean  # duplicate keys: leave them to msgspec's rule
    return d


def lean_payload(data: str) -> bytes | None:
    """DATA as msgspec would encode it, or None when outside the lean subset."""
    try:
        value = json.loads(data, parse_float=_float, parse_int=_int, parse_constant=_no_constant,
                           object_pairs_hook=_pairs)
        if type(value) is not dict:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (_NotLean, ValueError, RecursionError, UnicodeError):
        return None


def try_feed(pool_ref: str, data: str) -> int | None:
    """Append DATA to a local JSON pool and print its receipt; None = not handled."""
    if "://" in pool_ref:
        return None
    payload = lean_payload(data)
    if payload is None:
        return None
    from plasmite_core.errors import PlasmiteError
    from plasmite_core.pool import PoolFile
    from plasmite_core.refs import resolve_pool_ref_text

    path = resolve_pool_ref_text(pool_ref)
    if path is None:
        return None
    try:
        pf = PoolFile.open(path)
    except PlasmiteError:
        return None  # the full path reports it (with its hints)
    try:
        if pf.codec_name != "json":
            return None
        seq, t = pf.append(b"", payload, False)
    finally:
        pf.close()
    from .feeding import _isatty, _write_fast_receipts

    _write_fast_receipts([(seq, t)], b"[]", _isatty(sys.stdout))
    return 0
