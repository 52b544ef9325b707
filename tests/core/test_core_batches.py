"""What ``append_many`` guarantees (issue 10, item 7).

A batch whose frames total at most half the ring is written under one lock:
contiguous seqs even with other writers at work. A larger batch is split into
such chunks, in order. When a later chunk fails, the error carries the
receipts of what was stored (``committed``), and ``pls feed`` prints them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from plasmite import Client
from plasmite_core.errors import CorruptError

from cli_support import error_of, jsonl, pls

WRITER = textwrap.dedent(
    """
    import json, random, sys
    from plasmite import Client
    pool_dir, name, wid, rounds, lo, hi = sys.argv[1:7]
    rnd = random.Random(int(wid))
    out = []
    with Client(pool_dir) as c, c.open_pool(name) as pool:
        for b in range(int(rounds)):
            n = rnd.randint(int(lo), int(hi))
            vals = [{"w": int(wid), "b": b, "i": i, "pad": "p" * rnd.randint(0, 40)} for i in range(n)]
            ms = pool.append_many(vals)
            out.append([[m.seq for m in ms], [len(json.dumps(v, separators=(",", ":"))) for v in vals]])
    json.dump(out, sys.stdout)
    """
)


def _run_writers(pool_dir, name, n, rounds, lo, hi):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(pool_dir), name, str(w), str(rounds), str(lo), str(hi)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for w in range(n)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()
            results.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def test_batches_up_to_half_the_ring_are_contiguous_under_concurrent_writers(pool_dir):
    with Client(pool_dir) as c:
        c.create_pool("big", 8 * 1024 * 1024).close()
    results = _run_writers(pool_dir, "big", 4, 40, 1, 400)
    all_seqs = []
    with Client(pool_dir) as c, c.open_pool("big") as pool:
        for w, batches in enumerate(results):
            for b, (seqs, _) in enumerate(batches):
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (w, b)
                assert [pool.get(s).data["i"] for s in (seqs[0], seqs[-1])] == [0, len(seqs) - 1]
                assert {pool.get(s).data["w"] for s in seqs} == {w}
                all_seqs.extend(seqs)
    assert sorted(all_seqs) == list(range(1, len(all_seqs) + 1))


def test_a_batch_larger_than_half_the_ring_is_split_in_order(pool_dir):
    with Client(pool_dir) as c:
        ring = c.create_pool("small", 64 * 1024).info().ring_size
    # 300..500 messages of 40-100 byte frames: 0.3 to 0.9 of the ring
    results = _run_writers(pool_dir, "small", 3, 15, 300, 500)
    for batches in results:
        for seqs, plens in batches:
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            # each chunk of at most half the ring is contiguous
            start = 0
            while start < len(seqs):
                total = 0
                end = start
                while end < len(seqs) and (end == start or total + ((39 + plens[end]) & ~7) <= ring // 2):
                    total += (39 + plens[end]) & ~7
                    end += 1
                chunk = seqs[start:end]
                assert chunk == list(range(chunk[0], chunk[0] + len(chunk)))
                start = end


def _pool_with_a_damaged_frame_ahead(pool_dir):
    """A full 64 KiB pool whose frame 1.5 chunks from the tail has a damaged
    length: a two-chunk batch stores its first chunk, then its second chunk's
    eviction meets the damage."""
    msg = {"pad": "x" * 50}
    flen = (39 + len(json.dumps(msg, separators=(",", ":")))) & ~7
    with Client(pool_dir) as c, c.create_pool("p", 64 * 1024) as pool:
        pf = pool._file()
        R = pf.ring_size
        pool.append_many([msg] * (3 * R // flen))
        st = pf.read_state()
        per_chunk = (R // 2) // flen
        victim = st.oldest + per_chunk * 3 // 2
        pos = pf.locate(victim, st)
        off = pf.ring_offset + pos % R
    with open(pool_dir / "p.plasmite", "r+b") as f:
        f.seek(off)
        f.write(b"\0\0\0\0")
    return msg, per_chunk, st.newest


def test_a_failed_later_chunk_reports_what_was_committed(pool_dir):
    msg, per_chunk, newest = _pool_with_a_damaged_frame_ahead(pool_dir)
    with Client(pool_dir) as c, c.open_pool("p") as pool:
        try:
            pool.append_many([msg] * (2 * per_chunk))
        except CorruptError as err:
            committed = err.committed
        else:
            raise AssertionError("the second chunk should have met the damaged frame")
        assert [m.seq for m in committed] == list(range(newest + 1, newest + 1 + per_chunk))
        assert pool.bounds()[1] == newest + per_chunk
        assert all(pool.get(m.seq).data == msg for m in committed)


def test_feed_prints_receipts_for_the_chunks_it_stored(pool_dir):
    msg, per_chunk, newest = _pool_with_a_damaged_frame_ahead(pool_dir)
    line = json.dumps(msg) + "\n"
    r = pls("feed", "p", "--file", "-", pool_dir=pool_dir, input=line * (2 * per_chunk))
    assert r.returncode == 7, r.stderr
    assert error_of(r)["kind"] == "Corrupt"
    receipts = [x["seq"] for x in jsonl(r.stdout)]
    with Client(pool_dir) as c, c.open_pool("p") as pool:
        stored = pool.bounds()[1]
    assert stored > newest
    assert receipts == list(range(newest + 1, stored + 1))
