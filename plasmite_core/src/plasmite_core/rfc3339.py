"""The RFC 3339 text of a Unix second, cached: every envelope, receipt and
time field formats its seconds here (messages come in runs within one second).

It imports nothing but ``time``, so receipts on the one-shot path can use it
without loading msgspec.
"""

from __future__ import annotations

import time

# [second, its text]: one cache for every writer of times in this process.
_cache: list = [None, b""]


def second_bytes(sec: int) -> bytes:
    """``YYYY-MM-DDTHH:MM:SS`` of a Unix second (UTC), as ASCII bytes."""
    cache = _cache
    if cache[0] != sec:
        cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
        cache[0] = sec
    return cache[1]
