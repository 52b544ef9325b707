"""Split one encoded JSON array of objects into its elements' bytes.

``Pool.extend`` encodes a whole batch in one encoder call, which costs about
half of encoding each value; the frames then need each element's bytes. The
split is exact only for JSON the encoder wrote, so anything else answers None
and the caller encodes value by value, as before: whitespace between the
array's tokens, an element that is not an object (the caller's per-value
path raises its Usage error), invalid JSON (from a ``msgspec.Raw``), nesting
deeper than ``MAX_DEPTH``, or another element count than expected.

``split_objects_py`` is the reference. ``split_objects`` is the compiled twin
(``plasmite_speedups._pool.split_objects``, returning a sequence of the same
items that the compiled batch append reads without a bytes object per
message), or None on the pure path, where encoding value by value is faster
than this Python scan; tests/core/test_core_speedups.py compares the two.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from .speedups import compiled

MAX_DEPTH = 1024  # open objects and arrays in one element, itself included

_WS_RE = rb"[ \t\n\r]*"
_STRING_RE = rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_SCALAR_RE = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null"
_patterns: tuple[re.Pattern[bytes], ...] = ()  # compiled on first use: off the start-up path
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _COMMA, _COLON, _QUOTE = b"{}[],:\""


def _object_end(b: bytes, p: int, end: int) -> int:
    """The end of the valid JSON object at ``b[p] == '{'`` that ends before
    ``end`` (whitespace allowed inside it), or -1."""
    global _patterns
    if not _patterns:
        _patterns = tuple(re.compile(x) for x in (_WS_RE, _STRING_RE, _SCALAR_RE))
    _WS, _STRING, _SCALAR = _patterns
    closes = [_RBRACE]
    p += 1
    state = "first_key"
    while True:
        if state == "value":
            p = _WS.match(b, p, end).end()  # type: ignore[union-attr]  # matches the empty string
            if p >= end:
                return -1
            c = b[p]
            if c == _LBRACE or c == _LBRACKET:
                if len(closes) == MAX_DEPTH:
                    return -1
                p += 1
                if c == _LBRACE:
                    closes.append(_RBRACE)
                    state = "first_key"
                    continue
                closes.append(_RBRACKET)
                p = _WS.match(b, p, end).end()  # type: ignore[union-attr]
                if p < end and b[p] == _RBRACKET:
                    p += 1
                    closes.pop()
                    state = "after"
                continue
            m = (_STRING if c == _QUOTE else _SCALAR).match(b, p, end)
            if m is None:
                return -1
            p = m.end()
            state = "after"
        elif state == "first_key" or state == "key":
            p = _WS.match(b, p, end).end()  # type: ignore[union-attr]
            if state == "first_key" and p < end and b[p] == _RBRACE:
                p += 1
                closes.pop()
                state = "after"
                continue
            m = _STRING.match(b, p, end)
            if m is None:
                return -1
            p = _WS.match(b, m.end(), end).end()  # type: ignore[union-attr]
            if p >= end or b[p] != _COLON:
                return -1
            p += 1
            state = "value"
        else:  # after a value: ',' or the close of its container
            if not closes:
                return p
            p = _WS.match(b, p, end).end()  # type: ignore[union-attr]
            if p >= end:
                return -1
            if b[p] == _COMMA:
                p += 1
                state = "key" if closes[-1] == _RBRACE else "value"
            elif b[p] == closes[-1]:
                p += 1
                closes.pop()
            else:
                return -1


def split_objects_py(array: bytes, tags: bytes, count: int) -> list[tuple[bytes, bytes]] | None:
    """The ``(tags, element)`` items of ``array``, the bytes of a JSON array
    of ``count`` objects as an encoder writes it (no whitespace between
    ``[``, the elements, the commas and ``]``); None for anything else."""
    n = len(array)
    end = n - 1
    if n < 2 or array[0] != _LBRACKET or array[end] != _RBRACKET or count < 0:
        return None
    out: list[tuple[bytes, bytes]] = []
    p = 1
    if n == 2:
        return out if count == 0 else None
    while len(out) < count and array[p] == _LBRACE:
        q = _object_end(array, p, end)
        if q < 0:
            return None
        out.append((tags, array[p:q]))
        if q == end:
            return out if len(out) == count else None
        if array[q] != _COMMA or q + 1 == end:
            return None
        p = q + 1
    return None


_pool_ext = compiled("_pool")
# an older build of the extension lacks split_objects
split_objects: Callable[[bytes, bytes, int], Sequence[tuple[bytes, bytes]] | None] | None = getattr(
    _pool_ext, "split_objects", None)
COMPILED = split_objects is not None
