"""Damage handling that agrees with itself (issue 10, item 10).

With frame 5 of 12 damaged: ``pls doctor --repair`` keeps every frame that
verifies (it resynchronises past the damaged one) and reports the lost seqs;
``pool info`` shows the repaired state; the hints say what really happens
(appends go on, and are refused once the ring must overwrite a frame whose
length is damaged); a read of a damaged frame is Corrupt wherever it happens.
"""

from __future__ import annotations

import json
import struct

import pytest

from plasmite import Client
from plasmite_core.doctor import check_pool, repair_pool
from plasmite_core.errors import CorruptError, NotFoundError

from cli_support import error_of, jsonl, pls


def _pool(pool_dir, n=12, index_capacity=None, size=256 * 1024):
    with Client(pool_dir) as c, c.create_pool("d", size, index_capacity=index_capacity) as pool:
        for i in range(1, n + 1):
            pool.append({"i": i, "pad": "x" * 20})
    return pool_dir / "d.plasmite"


def _offset(path, seq) -> int:
    with Client(path.parent) as c, c.open_pool(str(path)) as pool:
        pf = pool._file()
        return pf.ring_offset + pf.locate(seq, pf.read_state()) % pf.ring_size


def _damage(path, seq, how) -> int:
    off = _offset(path, seq)
    with open(path, "r+b") as f:
        if how == "body":
            f.seek(off + 40)
            b = f.read(1)
            f.seek(off + 40)
            f.write(bytes([b[0] ^ 0x20]))
        else:
            f.seek(off)
            (flen,) = struct.unpack("<I", f.read(4))
            f.seek(off)
            f.write(struct.pack("<I", {"len_small": 0, "len_big": flen + 4096, "len_8": flen + 8}[how]))
    return off


def _info(pool_dir):
    r = pls("pool", "info", "d", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("how", ["body", "len_small", "len_big", "len_8"])
def test_repair_keeps_every_frame_that_verifies(pool_dir, how):
    path = _pool(pool_dir)
    off = _damage(path, 5, how)
    r = pls("fetch", "d", "5", pool_dir=pool_dir)
    assert r.returncode == 7
    err = error_of(r)
    assert err["kind"] == "Corrupt" and err["offset"] == off
    assert "refused" not in err["hint"] and "--repair" in err["hint"]
    assert json.loads(pls("fetch", "d", "6", pool_dir=pool_dir).stdout)["seq"] == 6

    r = pls("doctor", "d", "--repair", pool_dir=pool_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "11 messages kept" in r.stdout and "seqs lost: 5" in r.stdout
    assert check_pool(path).ok
    info = _info(pool_dir)
    assert info["bounds"] == {"oldest": 1, "newest": 12}
    assert info["metrics"]["message_count"] == 11 and info["metrics"]["seq_span"] == 12
    with Client(pool_dir) as c, c.open_pool("d") as pool:
        gaps = []
        got = [m.seq for m in pool.tail(since_seq=1, timeout_ms=0, on_gap=lambda a, b: gaps.append((a, b)))]
        assert got == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12] and gaps == [(5, 6)]
        with pytest.raises(NotFoundError):
            pool.get(5)
        assert pool.get(12).data["i"] == 12
        assert pool.append({"after": 1}).seq == 13
        assert pool.info().message_count == 12
    r = pls("follow", "d", "--tail", "100", "--jsonl", "--timeout", "1s", pool_dir=pool_dir)
    assert [m["seq"] for m in jsonl(r.stdout)] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13]


def test_repair_of_the_newest_frame_keeps_the_seq_sequence(pool_dir):
    path = _pool(pool_dir)
    _damage(path, 12, "len_small")
    rep = repair_pool(path)
    assert rep.ok and rep.lost == [[12, 12]] and rep.messages_checked == 11
    info = _info(pool_dir)
    assert info["bounds"] == {"oldest": 1, "newest": 11} and info["metrics"]["message_count"] == 11
    with Client(pool_dir) as c, c.open_pool("d") as pool:
        assert pool.append({"after": 1}).seq == 13  # seq 12 is never reused
        assert pool.bounds() == (1, 13) and pool.info().message_count == 12


def test_repair_of_every_other_frame(pool_dir):
    path = _pool(pool_dir, n=30)
    for seq in (2, 9, 10, 17, 29):
        _damage(path, seq, "len_big" if seq % 2 else "body")
    rep = repair_pool(path)
    assert rep.ok, rep.to_dict()
    assert rep.lost == [[2, 2], [9, 10], [17, 17], [29, 29]]
    with Client(pool_dir) as c, c.open_pool("d") as pool:
        kept = [m.seq for m in pool.tail(since_seq=1, timeout_ms=0)]
        assert kept == [s for s in range(1, 31) if s not in (2, 9, 10, 17, 29)]
        assert pool.info().message_count == 25


def test_first_frame_damaged_is_corrupt_not_not_found(pool_dir):
    """Without an index covering it, a get walks from the tail: a damaged
    length there used to end the walk as "not found" (exit 3)."""
    _pool(pool_dir, index_capacity=0)
    path = pool_dir / "d.plasmite"
    off = _damage(path, 1, "len_small")
    for seq in ("1", "3"):
        r = pls("fetch", "d", seq, pool_dir=pool_dir)
        assert r.returncode == 7, r.stderr
        err = error_of(r)
        assert err["kind"] == "Corrupt" and err["offset"] == off


def test_appends_to_a_damaged_pool_go_on_until_the_ring_reaches_the_damage(pool_dir):
    path = _pool(pool_dir, n=12, size=64 * 1024)
    _damage(path, 5, "len_small")
    r = pls("feed", "d", '{"fed": 1}', pool_dir=pool_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["seq"] == 13
    with Client(pool_dir) as c, c.open_pool("d") as pool:
        with pytest.raises(CorruptError) as ei:
            for _ in range(10_000):
                pool.append({"fill": "y" * 200})
        assert "refused" in ei.value.hint and "--repair" in ei.value.hint
    rep = repair_pool(path)
    assert rep.ok and rep.lost[0] == [5, 5]
    with Client(pool_dir) as c, c.open_pool("d") as pool:
        for _ in range(2000):
            pool.append({"fill": "y" * 200})  # the ring wraps over the repaired span
    assert check_pool(path).ok


def test_a_shortened_ring_end_pad_is_found_by_doctor(pool_dir):
    """Pads may sit inside the ring since repairs write them, so a ring-end pad
    whose length shrank lands on stale bytes (old frames, old pads): doctor
    must still report it, whatever it lands on."""
    from plasmite_core import format as F

    with Client(pool_dir) as c, c.create_pool("w", 64 * 1024) as pool:
        pf = pool._file()
        R = pf.ring_size
        i = 0
        while True:  # wrap several times with varied sizes, until the live span holds a pad
            pool.append({"i": i, "pad": "z" * (i * 37 % 700)})
            i += 1
            st = pf.read_state()
            if st.head > 5 * R and st.tail % R > st.head % R:
                break
        pad_off = pf.ring_offset + st.tail % R
        while True:  # the ring-end pad of the live span
            flen, crc = struct.unpack_from("<II", pf.mm, pad_off)
            if crc == F.PAD_MARK:
                break
            pad_off += flen
    path = pool_dir / "w.plasmite"
    original = path.read_bytes()
    (flen,) = struct.unpack_from("<I", original, pad_off)
    assert flen >= 16
    for shorter in range(8, flen, 8):
        data = bytearray(original)
        struct.pack_into("<I", data, pad_off, shorter)
        path.write_bytes(bytes(data))
        assert not check_pool(path).ok, shorter
        assert repair_pool(path).ok
    path.write_bytes(original)
    assert check_pool(path).ok
