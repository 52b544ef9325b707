"""Minimal reproductions of core bugs found by the reliability campaign.

Each test names the campaign test that found it. Fixed bugs stay here as
regression tests.
"""

from __future__ import annotations

import json

from plasmite import Client


def _flen(obj) -> int:
    return (39 + len(json.dumps(obj, separators=(",", ":")))) & ~7


def test_batch_frame_ending_exactly_at_ring_end(pool_dir):
    """Found by test_reliability_crash (batch writers): when a frame of a batch
    ended exactly at the ring end, the next frame (physical 0 of the next lap, no
    pad needed) was joined into the same copy, which ran past the ring:
    ``IndexError: mmap slice assignment is wrong size`` from append_many, every
    time a batch met that boundary."""
    with Client(pool_dir) as c, c.create_pool("b", 64 * 1024) as pool:
        pf = pool._file()
        R = pf.ring_size
        msg = {"x": "a" * 10}
        f = _flen(msg)

        def room() -> int:
            return R - pf.read_state().head % R

        while room() > 4 * f:
            pool.append(msg)
        need = room() - f  # a filler frame leaves room for exactly one more frame
        filler = "b" * (need - 47)
        while _flen(filler) < need:
            filler += "b"
        while _flen(filler) > need:
            filler = filler[:-1]
        pool.append(filler)
        assert room() == f
        before = pool.bounds()[1]
        ms = pool.append_many([msg, {"y": 1}, {"z": 2}])
        assert [m.seq for m in ms] == [before + 1, before + 2, before + 3]
        assert [pool.get(m.seq).data for m in ms] == [msg, {"y": 1}, {"z": 2}]
    path = pool_dir / "b.plasmite"
    oldest, newest, _ = verify_pool_plain(path)
    assert newest == before + 3


def verify_pool_plain(path):
    """verify_pool for pools whose messages are not self-checking payloads."""
    from plasmite_core.doctor import check_pool

    report = check_pool(path)
    assert report.ok, report.to_dict()
    with Client(path.parent) as c, c.open_pool(str(path)) as pool:
        oldest, newest = pool.bounds()
        seqs = [m.seq for m in pool.tail(since_seq=oldest, timeout_ms=0)]
        assert seqs == list(range(oldest, newest + 1))
        return oldest, newest, len(seqs)

