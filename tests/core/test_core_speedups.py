"""The compiled loops (plasmite_speedups._frames) against their pure-Python
reference (plasmite_core.framescan): same frames, same stop status, same
envelope bytes, on real pool rings, damaged rings and whole reads."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plasmite_core import framescan
from plasmite_core.client import Client

_frames = pytest.importorskip("plasmite_speedups._frames", reason="plasmite-speedups built without its C extension")

_text = st.text(max_size=40)
_msg = st.tuples(st.dictionaries(_text, st.integers() | _text | st.booleans(), max_size=4),
                 st.lists(st.text(min_size=1, max_size=8), max_size=3), st.integers(0, 600))


def _ring(pool) -> tuple[bytes, int]:
    info = pool.info()
    raw = open(info.path, "rb").read()
    return raw[info.ring_offset : info.ring_offset + info.ring_size], info.ring_size


def _both(buf: bytes, phys: int, ring: int, limit: int):
    a: list = []
    b: list = []
    ra = framescan.scan_chunk_py(buf, phys, ring, limit, a)
    rb = _frames.scan_chunk(buf, phys, ring, limit, b)
    assert ra == rb
    assert a == b
    return a, ra


def test_crc32_matches_zlib():
    rng = random.Random(7)
    for n in list(range(0, 70)) + [1000, 4097]:
        data = rng.randbytes(n)
        for start in range(4):
            assert _frames.crc32(data[start:]) == zlib.crc32(data[start:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=st.lists(_msg, min_size=1, max_size=60), cuts=st.lists(st.integers(0, 1 << 20), max_size=6),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=3),
       limit=st.integers(1, 70))
def test_scan_chunk_and_envelopes_match_the_reference(tmp_path_factory, msgs, cuts, flips, limit):
    d = tmp_path_factory.mktemp("sp")
    with Client(d) as c, c.create_pool("p", 64 * 1024) as p:
        for value, tags, pad in msgs:
            p.append({**value, "pad": "x" * pad}, tags)
        ring, size = _ring(p)
    frames, (off, status) = _both(ring, 0, size, limit)
    assert _frames.envelopes(frames) == framescan.envelopes_py(frames)
    # chunks cut anywhere (frames crossing the end: BIG), from any 8-aligned start
    for cut in cuts:
        start = (cut % size) & ~7
        _both(ring[start : start + cut % 4096], start, size, limit)
    damaged = bytearray(ring)
    for at, x in flips:
        damaged[at % size] ^= x
    _both(bytes(damaged), 0, size, limit)


def _read_all(pool_dir, env_pure: bool) -> str:
    code = ("import hashlib, sys\nfrom plasmite_core.client import Client\nfrom plasmite_core import framescan\n"
            "h = hashlib.sha256()\nwith Client(sys.argv[1]) as c, c.open_pool('w') as p:\n"
            "    s = p.open_stream(since_seq=0)\n    while True:\n        batch = s.poll_json(97)\n"
            "        if not batch: break\n        h.update(b''.join(batch))\n"
            "    for m in p: h.update(m.raw)\n    h.update(p.get(p.bounds()[1]).raw)\n"
            "print(framescan.COMPILED, h.hexdigest())")
    env = dict(os.environ)
    env.pop("PLASMITE_PURE", None)
    if env_pure:
        env["PLASMITE_PURE"] = "1"
    r = subprocess.run([sys.executable, "-c", code, str(pool_dir)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    compiled, digest = r.stdout.split()
    assert compiled == str(not env_pure)
    return digest


def test_random_workload_reads_the_same_bytes_on_both_paths(tmp_path):
    rng = random.Random(16)
    with Client(tmp_path) as c, c.create_pool("w", 256 * 1024) as p:
        for _ in range(3000):  # wraps the ring several times; pads and big frames included
            n = rng.choice((1, 1, 1, 5, 40))
            vals = [{"i": rng.randrange(1 << 40), "s": "é" * rng.randrange(0, 300 if rng.random() < 0.9 else 9000)}
                    for _ in range(n)]
            tags = [f"t{rng.randrange(3)}"] if rng.random() < 0.3 else None
            p.append_many(vals, tags)
    assert _read_all(tmp_path, True) == _read_all(tmp_path, False)


def test_bulk_apis_extend_and_poll_data(tmp_path):
    with Client(tmp_path) as c, c.create_pool("b", 256 * 1024) as p:
        assert p.extend([]) == range(0)
        seqs = p.extend(({"i": i} for i in range(300)), ["t"])
        assert seqs == range(1, 301)
        assert p.get(300).data == {"i": 299} and p.get(300).tags == ["t"]
        with pytest.raises(Exception) as err:
            p.extend([{"ok": 1}, [1, 2]])
        assert getattr(err.value, "kind", None) is not None and err.value.kind.label == "Usage"
        assert err.value.committed == []
        assert p.bounds() == (1, 300)  # nothing of a refused batch is stored
        s = p.open_stream(since_seq=1)
        got = []
        while batch := s.poll_data(128):
            got.extend(batch)
        assert got == [{"i": i} for i in range(300)]
        assert p.extend([{"k": "é"}]) == range(301, 302)
        assert s.poll_data() == [{"k": "é"}]
        # filtered streams take the general path and agree
        assert p.open_stream(since_seq=299, tags=["t"]).poll_data() == [{"i": 298}, {"i": 299}]
