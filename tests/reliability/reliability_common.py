"""Shared sizing and checks for the reliability campaign (tests/reliability/test_reliability_*.py).

Every campaign test runs at a CI size by default. ``PLASMITE_SOAK=1`` selects
the long soak sizes; a larger number multiplies them (``PLASMITE_SOAK=3`` runs
three times as long). Every loop is bounded both in count and in time, so a
regression shows up as a failed assertion, never as a hung CI job.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from pathlib import Path

from plasmite_core.doctor import check_pool, repair_pool

# Doctor issue codes met after crashes (and repaired), for docs/reliability.md.
ISSUES_SEEN: Counter = Counter()


def soak_factor() -> float:
    """0 for the CI size, else the soak multiplier (PLASMITE_SOAK=1, 2, ...)."""
    raw = os.environ.get("PLASMITE_SOAK", "").strip().lower()
    if raw in ("", "0", "no", "false", "off"):
        return 0.0
    try:
        return max(float(raw), 0.0) or 0.0
    except ValueError:
        return 1.0  # PLASMITE_SOAK=yes and the like


def size(ci: float, soak: float) -> int:
    """A count: ``ci`` in CI, ``soak`` times the soak factor in a soak run."""
    f = soak_factor()
    return int(ci if not f else soak * f)


def seconds(ci: float, soak: float) -> float:
    f = soak_factor()
    return float(ci if not f else soak * f)


class Budget:
    """A wall-clock bound for a loop (``while budget and n < count``)."""

    def __init__(self, secs: float) -> None:
        self.deadline = time.monotonic() + secs

    def __bool__(self) -> bool:
        return time.monotonic() < self.deadline

    @property
    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def digest(key: str, body: str) -> str:
    return hashlib.sha1(f"{key}|{body}".encode()).hexdigest()[:16]


def payload(key: str, n: int) -> dict:
    """A self-checking message: its digest covers its key and body."""
    body = (key * (n // max(1, len(key)) + 1))[:n]
    return {"k": key, "b": body, "h": digest(key, body)}


def is_whole(data) -> bool:
    return isinstance(data, dict) and data.get("h") == digest(str(data.get("k")), str(data.get("b")))


def verify_pool(path: Path, acked: set[int] | None = None, *, doctor: bool = True,
                allowed: tuple[str, ...] = ()) -> tuple[int | None, int | None, int]:
    """Open the pool and read everything back; assert it is whole.

    - doctor reports it clean, or names only issues in ``allowed`` and then
      ``repair_pool`` makes it clean without losing a message;
    - a tail from the oldest seq yields exactly oldest..newest, every message
      self-consistent (digest) and in time order;
    - get(seq) returns the same bytes for every retained seq;
    - every acknowledged seq (an append that returned before the kill) that
      retention has not overwritten is present.
    Returns (oldest, newest, count).
    """
    from plasmite import Client

    if doctor:
        report = check_pool(path)
        if not report.ok:
            codes = {i.code for i in report.issues}
            assert codes <= set(allowed), report.to_dict()
            ISSUES_SEEN.update(codes)
            bounds = (report.oldest_seq, report.newest_seq)
            fixed = repair_pool(path)
            assert fixed.repaired
            after = check_pool(path)
            assert after.ok, after.to_dict()
            assert (after.oldest_seq, after.newest_seq) == bounds
    with Client(path.parent) as c, c.open_pool(str(path)) as pool:
        oldest, newest = pool.bounds()
        if oldest is None:
            assert not acked or newest is None
            return None, None, 0
        msgs = list(pool.tail(since_seq=oldest, timeout_ms=0))
        seqs = [m.seq for m in msgs]
        assert seqs == list(range(oldest, newest + 1)), (oldest, newest, seqs[:5], seqs[-5:])
        last_t = 0
        for m in msgs:
            assert is_whole(m.data), (m.seq, str(m.data)[:80])
            assert m.time_ns >= last_t
            last_t = m.time_ns
            assert pool.get_json(m.seq) == m.raw
        if acked:
            missing = {s for s in acked if s >= oldest} - set(seqs)
            assert not missing, sorted(missing)[:10]
        return oldest, newest, len(msgs)
