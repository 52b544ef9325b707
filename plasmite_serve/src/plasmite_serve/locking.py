"""Taking a pool's write lock without ever blocking the event loop.

The core's append waits for the pool file's ``flock`` (bounded, then Busy; see
``plasmite_core.locks``), but a wait on the event loop would still freeze
every request for that long while a local writer that holds the lock is
stopped (Ctrl-Z on a ``pls feed``, SIGSTOP). So the server first takes the
lock without waiting (``Pool.try_lock``; the append that follows on the same
handle then goes through at once). When another process holds it, the
request retries with a growing sleep that leaves the loop free, until
``--lock-timeout-ms``, then answers Busy (423) with the core's hint naming the
holder's PID. Appends in worker threads (flushed ones) use the core's own
bounded wait, set to the same timeout.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from plasmite_core.locks import busy_error

FIRST_RETRY_S = 0.0005
LONGEST_RETRY_S = 0.005


async def acquire_async(get_pool, timeout_ms: int):
    """Wait (without blocking the loop) until ``get_pool()``'s lock is ours; returns that pool.

    ``get_pool`` is called on every try so a pool replaced meanwhile is
    reopened; raises Busy after ``timeout_ms``.
    """
    deadline = time.monotonic() + timeout_ms / 1000.0
    delay = FIRST_RETRY_S
    while True:
        pool = get_pool()
        if pool.try_lock():
            return pool
        if time.monotonic() >= deadline:
            raise busy_error(Path(pool.path), timeout_ms / 1000.0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY_S)
