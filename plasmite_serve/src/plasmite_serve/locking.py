"""Taking a pool's writer lock without ever blocking the event loop.

The core's append waits on the pool file's ``flock``. A local writer that
holds it and is stopped (Ctrl-Z on a ``pls feed``, SIGSTOP) would then freeze
the server's event loop, and with it every request. So the server first takes
the lock without waiting (``Pool.try_lock``; the append that follows on the
same handle goes through at once). When another process holds it, the request
retries with a growing sleep (on the loop: a waiting append holds no thread)
until ``--lock-timeout-ms``, then answers Busy (423) with a hint that names
the holder's PID when ``/proc/locks`` tells it. Appends that run in a worker
thread (flushed ones) wait the same bounded way.
"""

from __future__ import annotations

import asyncio
import os
import time

from plasmite_core.errors import BusyError

FIRST_RETRY_S = 0.0005
LONGEST_RETRY_S = 0.005


def lock_holder(path: str) -> int | None:
    """The PID holding an flock on ``path``, from ``/proc/locks`` (Linux), or None."""
    try:
        st = os.stat(path)
        with open("/proc/locks", "rb") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    want = b"%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234 0 EOF"; waiters have "->" after the number.
        if len(fields) >= 6 and fields[1] == b"FLOCK" and fields[5] == want:
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


def busy(name: str, path: str, timeout_ms: int) -> BusyError:
    pid = lock_holder(path)
    holder = f"process {pid}" if pid else "another process"
    hint = (
        f"{holder} holds the pool's writer lock (a stopped `pls feed`? check with `ps -p {pid}`); "
        "retry when it resumes or exits" if pid else "another writer holds the pool's lock; retry later"
    )
    return BusyError(f"pool {name} is busy: {holder} has held its writer lock for over {timeout_ms} ms",
                     path, hint=hint)


async def acquire_async(get_pool, name: str, timeout_ms: int):
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
            raise busy(name, str(pool.path), timeout_ms)
        await asyncio.sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY_S)


def acquire_blocking(pool, name: str, timeout_ms: int) -> None:
    """The same bounded wait for a worker thread."""
    deadline = time.monotonic() + timeout_ms / 1000.0
    delay = FIRST_RETRY_S
    while not pool.try_lock():
        if time.monotonic() >= deadline:
            raise busy(name, str(pool.path), timeout_ms)
        time.sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY_S)
