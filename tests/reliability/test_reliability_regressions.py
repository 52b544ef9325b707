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
        filler = {"f": "b" * (need - 55)}  # message data is a JSON object
        while _flen(filler) < need:
            filler["f"] += "b"
        while _flen(filler) > need:
            filler["f"] = filler["f"][:-1]
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



def test_damaged_frame_length_is_corrupt_not_a_skip(pool_dir):
    """Found by test_reliability_corruption: a frame's len field is outside its
    CRC, so a flipped bit that kept it 8-aligned made readers jump over whole
    messages (reported as a retention gap, or nothing at all for the newest
    frame) and doctor missed it. Now len must equal the aligned size of the
    fields the CRC covers."""
    import struct

    from plasmite_core.doctor import check_pool
    from plasmite_core.errors import CorruptError

    with Client(pool_dir) as c, c.create_pool("f", 64 * 1024) as pool:
        for i in range(5):
            pool.append({"i": i})
        pf = pool._file()
        ro = pf.ring_offset
        first_len = struct.unpack_from("<I", pf.mm, ro)[0]
        # frame 1 claims to span frames 1 and 2 (all the same size)
        struct.pack_into("<I", pf.mm, ro, first_len * 2)
        gaps = []
        try:
            got = [m.seq for m in pool.tail(since_seq=1, timeout_ms=0, on_gap=lambda a, b: gaps.append((a, b)))]
        except CorruptError as exc:
            assert exc.offset == ro and exc.path
        else:
            raise AssertionError(f"read {got} with gaps {gaps} instead of a Corrupt error")
        report = check_pool(pool_dir / "f.plasmite")
        assert not report.ok and report.issues[0].offset == ro


def test_doctor_checks_a_state_slot_whose_generation_reads_zero(pool_dir):
    """Found by tests/fuzz/fuzz_pool.py: doctor skipped a state slot whose gen
    word was 0 as "never written", so damage that zeroed the newest slot's
    generation went unreported while readers silently fell back to the older
    slot (losing the last publish)."""
    from plasmite_core import format as F
    from plasmite_core.doctor import check_pool

    with Client(pool_dir) as c, c.create_pool("z", 64 * 1024) as pool:
        for i in range(3):
            pool.append({"i": i})
        mm = pool._file().mm
        for base in (F.STATE_A_OFFSET, F.STATE_B_OFFSET):
            if any(mm[base : base + 52]):
                mm[base : base + 8] = bytes(8)  # gen word destroyed
                break
    report = check_pool(pool_dir / "z.plasmite")
    assert not report.ok and report.issues[0].code == "state_slot"


def test_deeply_nested_json_is_a_usage_error(pool_dir):
    """Found by test_reliability_hostile: JSON nested a few thousand levels deep
    escaped as RecursionError from append/append_json/append_many (HTTP 500
    Internal, `pls feed` exit 1) instead of a Usage error."""
    import pytest

    from plasmite_core.errors import UsageError

    def nest(n):
        v: dict = {}
        for _ in range(n):
            v = {"a": v}
        return v

    with Client(pool_dir) as c, c.create_pool("deep") as pool:
        for call in (lambda: pool.append_json(b"[" * 5000 + b"]" * 5000), lambda: pool.append(nest(5000)),
                     lambda: pool.append_many([{"ok": 1}, nest(5000)])):
            with pytest.raises(UsageError, match="nested too deeply"):
                call()
        assert pool.bounds() == (None, None)
        assert pool.append(nest(100)).seq == 1


def test_repair_refuses_out_of_range_state_cleanly(pool_dir):
    """Found by tests/fuzz/fuzz_pool.py: repair_pool on a (CRC-valid, forged)
    state slot whose generation was near 2**64 raised struct.error while
    publishing gen + 2 (and doctor called such a state fine). Now doctor reports
    it and repair answers a Corrupt error that says it cannot repair."""
    import struct
    import zlib

    import pytest

    from plasmite_core import format as F
    from plasmite_core.doctor import check_pool, repair_pool
    from plasmite_core.errors import CorruptError

    with Client(pool_dir) as c, c.create_pool("g", 64 * 1024) as pool:
        for i in range(3):
            pool.append({"i": i})
        mm = pool._file().mm
        st = pool._file().read_state()
        base = F.STATE_A_OFFSET if st.gen & 1 else F.STATE_B_OFFSET
        struct.pack_into("<Q", mm, base + 24, 2**64 - 1)  # newest_seq
        struct.pack_into("<Q", mm, base, 2**64 - 1)  # gen
        struct.pack_into("<I", mm, base + 48, zlib.crc32(bytes(mm[base : base + 48])))
    path = pool_dir / "g.plasmite"
    assert not check_pool(path).ok
    with pytest.raises(CorruptError, match="cannot repair"):
        repair_pool(path)


def test_unaligned_head_in_a_forged_state_is_corrupt_not_a_hang(pool_dir):
    """Found by tests/fuzz/fuzz_pool.py (a libFuzzer timeout): a CRC-valid state
    whose head ends 4 bytes past the last frame made Pool.scan spin forever
    (fewer than 8 bytes left, nothing consumed, no progress). Now Corrupt."""
    import signal
    import struct
    import zlib

    import pytest

    from plasmite_core import format as F
    from plasmite_core.errors import CorruptError

    with Client(pool_dir) as c, c.create_pool("h", 64 * 1024) as pool:
        for i in range(3):
            pool.append({"i": i})
        pf = pool._file()
        mm = pf.mm
        st = pf.read_state()
        base = F.STATE_A_OFFSET if st.gen & 1 else F.STATE_B_OFFSET
        struct.pack_into("<Q", mm, base + 8, st.head + 4)
        struct.pack_into("<I", mm, base + 48, zlib.crc32(bytes(mm[base : base + 48])))

        def hang(*_):
            raise TimeoutError("Pool.tail did not finish")

        old = signal.signal(signal.SIGALRM, hang)
        signal.alarm(10)
        try:
            with pytest.raises(CorruptError) as ei:
                list(pool.tail(since_seq=1, timeout_ms=0))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        assert ei.value.path and ei.value.offset is not None
