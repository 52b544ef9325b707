"""Waking followers without polling: a futex on a word of the shared mapping.

Writers store the new state generation in a futex word of the pool header
after every publish and call FUTEX_WAKE only when a follower has announced (by
a wall-clock deadline word) that it may be asleep. Followers read the counter, re-check for data, then FUTEX_WAIT on
the value they read, so a publish in between is never slept through.

This is a latency optimisation only: every wait is bounded, and a missed
wake-up costs at most one wait slice, never a message. Where futexes are not
available (not Linux, or no libc), waiting degrades to short sleeps.

A follower's first sleep also settles the garbage collector once per process
(see ``_settle_gc``), so that cost is paid while idle, not during a hand-off.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import time

from .format import NOTIFY_COUNTER_OFFSET, WAITER_DEADLINE_OFFSET

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# Longest single sleep: bounds the cost of a lost wake-up.
WAIT_SLICE_S = 0.25
# Sleep used where futexes are unavailable.
POLL_INTERVAL_S = 0.002

_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "i686": 240, "i386": 240}

# ctypes is imported on first use (a follower waiting, or a writer seeing a
# waiter), keeping it off the start-up path of one-shot appends.
_futex = None  # None: not resolved yet; False: unavailable; else (syscall, nr, ctypes)

# The first generation-1 collection of a process walks everything its imports
# left in the young generations: in a follower process that is 1-2 ms of CPU
# (docs/benchmarks.md, "hand-off p99"), and when it fell due mid-hand-off it
# delayed a run of messages. A follower's first sleep is idle time, so that
# collection is done there, once; later gen-1 collections find little to walk.
_gc_settled = False


def _settle_gc() -> None:
    global _gc_settled
    _gc_settled = True
    if gc.isenabled():
        gc.collect(1)


def _resolve():
    global _futex
    if _futex is not None:
        return _futex
    _futex = False
    if not sys.platform.startswith("linux") or os.environ.get("PLASMITE_NO_FUTEX"):
        return _futex
    import platform

    nr = _SYS_FUTEX.get(platform.machine().lower())
    if nr is None:
        return _futex
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError, ImportError):
        return _futex
    fn.restype = ctypes.c_long
    _futex = (fn, nr, ctypes)
    return _futex


class Notifier:
    """Wake/wait on one pool mapping. One per open pool handle."""

    __slots__ = ("_mm", "_word", "_addr", "_ready")

    def __init__(self, mm) -> None:
        self._mm = mm
        self._word = None
        self._addr = None
        self._ready = False

    def _setup(self) -> None:
        self._ready = True
        fx = _resolve()
        if not fx:
            return
        ctypes = fx[2]
        try:
            self._word = ctypes.c_uint32.from_buffer(self._mm, NOTIFY_COUNTER_OFFSET)
            self._addr = ctypes.addressof(self._word)
        except (TypeError, ValueError, BufferError):  # read-only mapping
            self._word = None

    def release(self) -> None:
        """Drop the buffer export so the mmap can be closed."""
        self._word = None
        self._addr = None

    # -- writer side (called with the pool lock held) ----------------------
    # The writer stores the new state generation in the futex word itself and
    # calls wake() only while the waiter deadline (wall-clock ns) is ahead.
    def wake(self) -> None:
        if not self._ready:
            self._setup()
        if self._addr is not None:
            fn, nr, ctypes = _futex
            fn(nr, ctypes.c_void_p(self._addr), _FUTEX_WAKE, 0x7FFFFFFF, None, None, 0)

    # -- follower side -------------------------------------------------------
    def prepare(self, timeout_s: float | None) -> int:
        """Announce a possible sleep and return the counter to wait on.

        The caller must re-check for new data after this and before wait().
        """
        mm = self._mm
        if not self._ready:
            self._setup()
        if self._addr is not None:
            slice_s = WAIT_SLICE_S if timeout_s is None else min(timeout_s, WAIT_SLICE_S)
            until = time.time_ns() + int(slice_s * 1e9) + 5_000_000
            (cur,) = _U64.unpack_from(mm, WAITER_DEADLINE_OFFSET)
            if until > cur:
                try:
                    _U64.pack_into(mm, WAITER_DEADLINE_OFFSET, until)
                except TypeError:  # read-only mapping
                    pass
        return _U32.unpack_from(mm, NOTIFY_COUNTER_OFFSET)[0]

    def wait(self, seen: int, timeout_s: float | None) -> None:
        """Sleep until the counter moves from ``seen`` or a slice passes."""
        slice_s = WAIT_SLICE_S if timeout_s is None else max(0.0, min(timeout_s, WAIT_SLICE_S))
        if not _gc_settled:
            _settle_gc()
        if not self._ready:
            self._setup()
        if self._addr is None:
            time.sleep(min(slice_s, POLL_INTERVAL_S))
            return
        fn, nr, ctypes = _futex
        ts = (ctypes.c_long * 2)(int(slice_s), int((slice_s % 1) * 1e9))  # struct timespec
        fn(nr, ctypes.c_void_p(self._addr), _FUTEX_WAIT, seen, ts, None, 0)

    def counter(self) -> int:
        return _U32.unpack_from(self._mm, NOTIFY_COUNTER_OFFSET)[0]
