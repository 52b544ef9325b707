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


def test_append_encoded_refuses_an_empty_payload(tmp_path):
    """An empty payload made a 32-byte frame that readers refuse as a bad
    length: every later message was unreadable until a repair."""
    with Client(tmp_path) as c, c.create_pool("e") as p:
        p.append({"a": 1})
        with pytest.raises(Exception) as e:
            p.append_encoded([(b"", b'{"b":2}'), (b"", b"")])
        assert e.value.kind.label == "Usage" and e.value.hint
        assert p.bounds() == (1, 1) and [m.data for m in p.open_stream(since_seq=1).poll()] == [{"a": 1}]


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


_odd_payload = st.sampled_from([b"\n", b"1\n2", b'{"a":', b'"\xff"', b"{}\n", b"[1]", b'{"a":1} {}', b"null"])
_item = (st.tuples(st.sampled_from([b"", b'["t"]', b'["a","b"]']),
                   st.tuples(st.dictionaries(_text, st.integers() | _text, max_size=3), st.sampled_from([0, 0, 900, 2500]))
                   .map(lambda dp: msgspec.json.encode({**dp[0], "pad": "x" * dp[1]})))
         | st.tuples(st.sampled_from([b"", b'["t"]', b"[1]", b'["x\ny"]']), _odd_payload))


def _drain(stream, limits) -> list:
    """poll_data outcomes until the stream has nothing more (or raised)."""
    out = []
    for limit in limits * 50:
        try:
            got = stream.poll_data(limit)
        except Exception as exc:
            out.append((type(exc).__name__, str(exc)))
            break
        out.append(got)
        if not got:
            break
    return out


def _both_poll_data(d, items, since=1, mx=None, limits=(1024,)) -> list:
    from plasmite_core import stream as stream_mod

    if stream_mod._Joined is None:
        pytest.skip("no compiled Joined sink")
    with Client(d) as c, c.create_pool("j", 64 * 1024) as p:
        p.append_encoded(items)
        results = []
        for joined in (stream_mod._Joined, None):
            stream_mod._Joined, saved = joined, stream_mod._Joined
            try:
                with p.open_stream(since_seq=since, max_messages=mx) as s:
                    results.append(_drain(s, list(limits)))
            finally:
                stream_mod._Joined = saved
        c.delete_pool("j")
    assert results[0] == results[1]
    return results[0]


@pytest.mark.parametrize("pair", [(b"1\n2", b"\n"), (b"{}\n", b" "), (b"\n", b"{}\n"), (b"{}\n{}", b"\r\n")])
def test_joined_poll_data_never_lets_a_newline_shift_values(tmp_path, pair):
    """A payload holding a newline beside a blank one would decode to the
    right number of values, shifted: the compiled path must see the damage."""
    items = [(b"", b'{"a":1}'), (b"", pair[0]), (b"", pair[1]), (b"", b'{"b":2}')]
    got = _both_poll_data(tmp_path, items)
    assert got[0] == [{"a": 1}] and got[1][0] == "CorruptError"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_item, min_size=1, max_size=120), since=st.integers(0, 130),
       mx=st.none() | st.integers(0, 130), limits=st.lists(st.integers(1, 70), min_size=1, max_size=4))
def test_joined_poll_data_matches_the_per_frame_path(tmp_path_factory, items, since, mx, limits):
    """poll_data's compiled path (one joined buffer per batch) gives what the
    per-frame path gives: values, batch sizes and errors, on valid and
    damaged payloads and tags, gaps (a small ring wraps) and max_messages."""
    _both_poll_data(tmp_path_factory.mktemp("j"), items, since, mx, limits)


# ---------------------------------------------------------------------------
# The compiled locked append and get by seq (plasmite_speedups._pool) against
# the Python reference in pool.py: two pools fed the same workload with the
# same injected clock must end up byte-identical, with the same receipts,
# the same get results and the same errors.

from plasmite_core import format as F  # noqa: E402
from plasmite_core import pool as core_pool  # noqa: E402
from plasmite_core.errors import PlasmiteError  # noqa: E402

_cpool = pytest.importorskip("plasmite_speedups._pool", reason="plasmite-speedups built without its C extension")
POOL_SIZE = 64 * 1024


class _Clock:
    """A deterministic time_ns that sometimes steps back (the append clamps)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.t += self.rng.choice((1, 7, 999_999_999, -5_000, 0))
        return self.t


def _ring_of(pf):
    """The PoolFile's Ring; under PLASMITE_PURE=1 pool.py makes none, so the
    compiled methods get one here (the comparison runs in both tox envs)."""
    if pf._ring is None:
        pf._ring = _cpool.Ring(pf.mm, pf.ring_offset, pf.ring_size, pf.index_offset, pf.index_capacity)
        pf._ring.wake = pf.notifier.wake
    return pf._ring


def _pair(tmp_path, monkeypatch, index_capacity=None, seed=0):
    """Two fresh pools created at the same instant; the first appends through
    the C calls, the second through the Python reference."""
    clocks = (_Clock(seed), _Clock(seed))
    files = []
    for name, clock in zip(("c", "py"), clocks):
        monkeypatch.setattr(core_pool, "_time_ns", clock)
        d = tmp_path / name
        files.append(core_pool.PoolFile.create(d / "w.plasmite", POOL_SIZE, index_capacity))
    for pf, clock in zip(files, clocks):
        pf.test_clock = clock
    _ring_of(files[0]).clock = clocks[0]
    return files


def _file_bytes(pf) -> bytes:
    return bytes(pf.mm)


def _outcome(fn, *args):
    """``fn(*args)`` (a PoolFile method) with its pool's clock as the module's
    (the Python path reads that one, also when the C call hands over)."""
    core_pool._time_ns = fn.__self__.test_clock
    try:
        return ("ok", fn(*args))
    except PlasmiteError as exc:
        return ("error", exc.kind, str(exc).replace("/c/", "/X/").replace("/py/", "/X/"),
                getattr(exc, "committed", None))


_item = st.tuples(
    st.sampled_from([b"", b'["a"]', b'["t1","t2"]', b'["' + b"x" * 300 + b'"]']),
    st.one_of(st.integers(0, 200), st.integers(200, 5000), st.integers(20_000, 40_000), st.integers(60_000, 62_000))
    .map(lambda n: b'{"p":"' + b"y" * n + b'"}'),
)
_op = st.one_of(st.tuples(st.just("one"), _item), st.tuples(st.just("many"), st.lists(_item, min_size=1, max_size=25)),
                st.tuples(st.just("get"), st.integers(-3, 3)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=40), small_index=st.booleans(), seed=st.integers(0, 1000))
def test_compiled_append_and_get_write_the_same_bytes(tmp_path_factory, monkeypatch_session, ops, small_index, seed):
    """Random single appends and batches (wraps, pads, frames near the ring
    size that evict everything, batches split into chunks and crossing the
    ring end), with a full or a small index: same receipts, same bytes, same
    gets, same errors (a frame larger than the ring)."""
    tmp = tmp_path_factory.mktemp("diff")
    c, py = _pair(tmp, monkeypatch_session, 64 if small_index else None, seed)
    try:
        for kind, arg in ops:
            if kind == "one":
                assert _outcome(c._append_c, *arg) == _outcome(py._append_py, *arg)
            elif kind == "many":
                assert _outcome(c._append_batch_c, arg) == _outcome(py._append_batch_py, arg)
            else:
                st_ = py.read_state()
                for seq in (st_.oldest + arg, st_.newest + arg, max(0, st_.newest - 2 * arg)):
                    got = _outcome(c._get_frame_c, seq)[1]
                    assert got == py._get_frame_py(seq) == c._get_frame_py(seq)
                    if got is not None and not small_index:
                        assert c._ring.get(seq) == got  # answered by C itself, not handed back
            assert _file_bytes(c) == _file_bytes(py)
    finally:
        c.close()
        py.close()


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_extend_runs_and_seqs_on_both_paths(tmp_path, monkeypatch):
    c, py = _pair(tmp_path, monkeypatch)
    try:
        items = [(b"", b'{"i":%d}' % i) for i in range(2000)]  # several chunks of half the ring
        assert c._append_seqs_c([]) == py._append_seqs_py([]) == range(0)
        assert c._append_seqs_c(items) == py._append_seqs_py(items) == range(1, 2001)
        assert _file_bytes(c) == _file_bytes(py)
        big = [(b"", b"x" * (POOL_SIZE))]
        a, b = _outcome(c._append_seqs_c, items[:3] + big), _outcome(py._append_seqs_py, items[:3] + big)
        assert a == b and a[0] == "error" and a[1].label == "Usage"
        assert _file_bytes(c) == _file_bytes(py)  # a refused batch stores nothing
    finally:
        c.close()
        py.close()


@settings(max_examples=300, deadline=None)
@given(head=st.integers(0, 1 << 40), ring=st.integers(5, 4096).map(lambda n: n * 8),
       lengths=st.lists(st.integers(5, 600).map(lambda n: n * 8), max_size=12))
def test_compiled_planner_matches_format(head, ring, lengths):
    head &= ~7
    try:
        want = tuple(F.plan_placement(head, ring, lengths))
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            _cpool.plan(head, ring, lengths)
        return
    assert _cpool.plan(head, ring, lengths) == want


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(5, 120), flips=st.lists(st.tuples(st.integers(0, POOL_SIZE - 1), st.integers(1, 255)), min_size=1,
                                              max_size=6),
       where=st.sampled_from(["ring", "index", "state", "anywhere"]), small_index=st.booleans(), seed=st.integers(0, 99))
def test_damaged_files_give_the_same_results_and_errors(tmp_path_factory, monkeypatch_session, n, flips, where,
                                                        small_index, seed):
    """A forged or damaged pool: gets and appends on the compiled path give the
    Python path's answers and error kinds (Corrupt with the offset), and never
    touch bytes outside the mapping (ASan builds check the latter)."""
    tmp = tmp_path_factory.mktemp("dmg")
    c, py = _pair(tmp, monkeypatch_session, 64 if small_index else None, seed)
    rng = random.Random(seed)
    try:
        for i in range(n):
            item = (b"", b'{"i":"%s"}' % (b"z" * rng.choice((0, 50, 900, 3000))))
            _outcome(c._append_c, *item)
            _outcome(py._append_py, *item)
        lo, span = {"ring": (py.ring_offset, py.ring_size), "index": (py.index_offset, py.index_capacity * 4 or 8),
                    "state": (F.STATE_A_OFFSET, 128 + 52), "anywhere": (0, POOL_SIZE)}[where]
        for at, x in flips:
            off = lo + at % span
            if off < F.STATIC_CRC_OFFSET + 4:
                continue  # the static header is checked at open, not here
            c.mm[off] ^= x
            py.mm[off] ^= x
        py._wstate = None  # the reference's cache of its own last publish would skip the damaged slots
        st_ = F.choose_state(bytes(py.mm[F.STATE_A_OFFSET : F.STATE_A_OFFSET + 128]))
        if st_ is None:
            return  # both slots damaged: the reference retries for a while; covered by its own tests
        for seq in range(max(0, st_.oldest - 1), st_.newest + 2):
            assert _outcome(c._get_frame_c, seq) == _outcome(py._get_frame_py, seq)
        for item in [(b"", b'{"after":"%s"}' % (b"q" * rng.choice((10, 4000, 20000)))) for _ in range(6)]:
            a, b = _outcome(c._append_c, *item), _outcome(py._append_py, *item)
            assert a == b
            if a[0] == "error":
                assert a[1].label in ("Corrupt", "NotFound", "Usage")
        batch = [(b"", b'{"b":%d}' % i) for i in range(30)]
        assert _outcome(c._append_batch_c, batch) == _outcome(py._append_batch_py, batch)
        assert _file_bytes(c) == _file_bytes(py)
    finally:
        c.close()
        py.close()


def _faulted_writer(path: str, fault: str, mode: str, compiled: bool, seed: int) -> None:
    """Forked child: a fixed workload through one path with a fault armed."""
    try:
        clock = _Clock(seed)
        core_pool._time_ns = clock
        core_pool._fault_spec, core_pool._faults, core_pool._fault_count = fault, True, 0
        pf = core_pool.PoolFile.open(path)
        _ring_of(pf).clock = clock
        rng = random.Random(seed)
        for i in range(400):
            sizes = [rng.choice((0, 40, 300, 2500, 9000)) for _ in range(rng.randint(1, 9))]
            items = [(b'["w"]' if i % 3 else b"", b'{"i":%d,"b":"%s"}' % (i, b"v" * s)) for s in sizes]
            if mode == "single":
                (pf._append_c if compiled else pf._append_py)(*items[0])
            elif mode == "split" and compiled:  # a batch of Pool.extend, split from one array
                array = b"[" + b",".join(pl for _, pl in items) + b"]"
                pf._append_batch_c(_cpool.split_objects(array, items[0][0], len(items)))
            else:
                (pf._append_batch_c if compiled else pf._append_batch_py)(items)
    except BaseException:  # noqa: BLE001
        os._exit(3)
    os._exit(0)


@pytest.mark.parametrize("mode", ["single", "batch", "split"])
@pytest.mark.parametrize("step", core_pool.FAULT_STEPS)
def test_fault_points_leave_the_same_bytes(tmp_path, mode, step):
    """A writer killed at the n-th reach of a fault point leaves the same file
    on both paths: the C code stops at the same step after the same partial
    write (torn frame, torn run, torn state slot)."""
    import signal

    for nth in (1, 2, 5, 17):
        files = []
        for compiled in (True, False):
            path = tmp_path / f"{step}-{mode}-{nth}-{compiled}.plasmite"
            core_pool.PoolFile.create(path, POOL_SIZE, 64 if nth == 5 else None).close()
            # the same created_ns in both headers: copy the first file's header
            pid = os.fork()
            if pid == 0:
                _faulted_writer(str(path), f"{step}:{nth}", mode, compiled, nth)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (step, mode, nth, status)
            files.append(path.read_bytes())
        hdr = F.STATIC_CRC_OFFSET + 4
        assert files[0][hdr:] == files[1][hdr:], (step, mode, nth)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 80), dhead=st.integers(-64, 64), dtail=st.integers(-70_000, 64), dnew=st.integers(-3, 3),
       dold=st.integers(-3, 3), seed=st.integers(0, 99))
def test_forged_state_slots_give_the_same_results(tmp_path_factory, monkeypatch_session, n, dhead, dtail, dnew, dold,
                                                   seed):
    """A state slot forged with a valid CRC (positions off a frame boundary,
    tail past head, seqs that do not match the frames): the C code reads and
    writes nothing outside the ring and answers as the Python path."""
    tmp = tmp_path_factory.mktemp("forged")
    c, py = _pair(tmp, monkeypatch_session, None, seed)
    rng = random.Random(seed)
    try:
        for i in range(n):
            item = (b"", b'{"i":"%s"}' % (b"z" * rng.choice((0, 50, 900, 3000))))
            _outcome(c._append_c, *item)
            _outcome(py._append_py, *item)
        s = py.read_state()
        forged = F.State(s.gen + 1, max(0, s.head + dhead), max(0, s.tail + dtail), max(0, s.newest + dnew),
                         max(0, s.oldest + dold), s.newest_time)
        slot = F.STATE_A_OFFSET if forged.gen & 1 else F.STATE_B_OFFSET
        for pf in (c, py):
            pf.mm[slot : slot + 56] = F.pack_state(forged)
        py._wstate = None
        for seq in range(max(0, forged.oldest - 1), forged.newest + 2):
            assert _outcome(c._get_frame_c, seq) == _outcome(py._get_frame_py, seq)
        for size in (10, 3000, 30_000):
            assert _outcome(c._append_c, b"", b"{}" + b" " * size) == _outcome(py._append_py, b"", b"{}" + b" " * size)
        batch = [(b"", b'{"b":%d}' % i) for i in range(20)]
        assert _outcome(c._append_batch_c, batch) == _outcome(py._append_batch_py, batch)
        assert _file_bytes(c) == _file_bytes(py)
    finally:
        c.close()
        py.close()


def test_deleted_pool_refuses_appends_on_both_paths(tmp_path, monkeypatch):
    c, py = _pair(tmp_path, monkeypatch)
    try:
        for pf in (c, py):
            _outcome(pf._append_c if pf is c else pf._append_py, b"", b"{}")
            pf.lock()
            pf.mark_deleted()
            pf.unlock()
        a = _outcome(c._append_c, b"", b"{}")
        assert a == _outcome(py._append_py, b"", b"{}") and a[0] == "error" and a[1].label == "NotFound"
        assert _outcome(c._append_batch_c, [(b"", b"{}")]) == _outcome(py._append_batch_py, [(b"", b"{}")])
        assert _file_bytes(c) == _file_bytes(py)
    finally:
        c.close()
        py.close()


# ---------------------------------------------------------------------------
# The batch split of Pool.extend (plasmite_speedups._pool.split_objects and
# Elements) against its reference (plasmite_core.jsonsplit.split_objects_py).

import dataclasses  # noqa: E402

import msgspec  # noqa: E402

from plasmite_core import jsonsplit  # noqa: E402
from plasmite_core.client import Pool  # noqa: E402

# Keys and strings with the bytes a splitter could trip on.
_tricky = st.text(alphabet=st.sampled_from(list('[]{},:"\\/ \t\n\x00\x1féü€😀ab0e-.')), max_size=12) | _text
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | _tricky,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_tricky, kids, max_size=4),
    max_leaves=20,
)
_objects = st.lists(st.dictionaries(_tricky, _json, max_size=5), max_size=12)
_tags_blob = st.sampled_from([b"", b'["a"]', b'["t1","t2"]'])


_RAWS = msgspec.json.Decoder(list[msgspec.Raw])


def _split_both(array: bytes, tags: bytes, count: int):
    c = _cpool.split_objects(array, tags, count)
    py = jsonsplit.split_objects_py(array, tags, count)
    assert (None if c is None else list(c)) == py, (array, count)
    if py is not None:  # a split tiles the input exactly, each element a JSON object
        assert b"[" + b",".join(el for _, el in py) + b"]" == array
        for _, el in py:  # valid JSON (UTF-8 is the encoder's business, not checked), an object
            assert el[:1] == b"{" and len(_RAWS.decode(b"[" + el + b"]")) == 1
        assert all(tg is tags for tg, _ in py)
    return py


@settings(max_examples=300, deadline=None)
@given(vals=_objects, tags=_tags_blob, off=st.integers(-2, 2))
def test_split_objects_gives_the_per_value_encodings(vals, tags, off):
    array = msgspec.json.encode(vals)
    assert _split_both(array, tags, len(vals)) == [(tags, msgspec.json.encode(v)) for v in vals]
    if off:
        assert _split_both(array, tags, len(vals) + off) is None  # another count: None


@settings(max_examples=400, deadline=None)
@given(vals=st.lists(st.dictionaries(_tricky, _json, max_size=4) | _json, min_size=1, max_size=6),
       edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 3), st.binary(min_size=1, max_size=3)),
                      min_size=1, max_size=3))
def test_split_objects_refuses_or_splits_exactly_damaged_arrays(vals, edits):
    """Arrays with non-objects, bytes flipped, inserted or removed: C and
    Python agree, and a split they make tiles the input into valid objects."""
    b = bytearray(msgspec.json.encode(vals))
    for at, op, data in edits:
        at %= len(b) + 1
        if op == 0 and at < len(b):
            b[at] ^= data[0] or 1
        elif op == 1:
            b[at:at] = data
        elif op == 2:
            del b[at : at + len(data)]
        else:
            b[at : at + len(data)] = data
    for count in {len(vals), bytes(b).count(b"{")}:
        _split_both(bytes(b), b"", count)


@pytest.mark.parametrize("array,count", [
    (b"", 0), (b"[", 0), (b"]", 0), (b"[]", 1), (b"[1]", 1), (b'["{}"]', 1), (b"[[]]", 1), (b"[{},1]", 2),
    (b"[{} ]", 1), (b"[ {}]", 1), (b"[{}, {}]", 2), (b"[{},]", 1), (b"[{},,{}]", 2), (b"[{}{}]", 2), (b"{}", 1),
    (b"[{}]x", 1), (b'[{"a":1,}]', 1), (b'[{"a"}]', 1), (b'[{1:2}]', 1), (b'[{"a":01}]', 1), (b'[{"a":1.}]', 1),
    (b'[{"a":-}]', 1), (b'[{"a":1e}]', 1), (b'[{"a":tru}]', 1), (b'[{"a":"\\x"}]', 1), (b'[{"a":"\\u12g4"}]', 1),
    (b'[{"a":"\x01"}]', 1), (b'[{"a":"b]', 1), (b'[{"a":[1}]', 1), (b'[{"a":{"b":1]}]', 1), (b'[{"a":"\\"}]', 1),
    (b'[{"a":[1,2,]}]', 1),
])
def test_split_objects_refuses_malformed_arrays(array, count):
    assert _split_both(array, b"", count) is None


@pytest.mark.parametrize("array,count", [
    (b"[]", 0), (b"[{}]", 1), (b'[{"a]":"]"},{"b\\"":"\\\\"}]', 2), (b'[{ "a" : [ 1 , {} ] }]', 1),
    (b'[{"a":"\\u00e9\\n","b":[true,false,null,-0.5e+3,0,[]]}]', 1), ('[{"é":"😀"}]'.encode(), 1),
    (b'[{"a":' + b"[{}," * 400 + b"{}" + b"]" * 400 + b"}]", 1),
])
def test_split_objects_splits_valid_arrays(array, count):
    assert _split_both(array, b"", count) is not None


def test_split_objects_nesting_limit():
    for depth in (jsonsplit.MAX_DEPTH, jsonsplit.MAX_DEPTH + 1):  # the element's own object included
        array = b'[{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"},{}]"
        want = [(b"", array[1:-4]), (b"", b"{}")] if depth == jsonsplit.MAX_DEPTH else None
        assert jsonsplit.split_objects_py(array, b"", 2) == want
        got = _cpool.split_objects(array, b"", 2)
        assert (None if got is None else list(got)) == want


def test_elements_are_a_sequence_of_items():
    el = _cpool.split_objects(b'[{"a":1},{},{"b":[2]}]', b'["t"]', 3)
    items = [(b'["t"]', b'{"a":1}'), (b'["t"]', b"{}"), (b'["t"]', b'{"b":[2]}')]
    assert len(el) == 3 and list(el) == items
    assert el[0] == items[0] and el[-1] == items[-1]
    assert el[1:] == items[1:] and el[::-1] == items[::-1] and el[5:] == []
    with pytest.raises(IndexError):
        el[3]
    with pytest.raises(TypeError):
        _cpool.split_objects("[{}]", b"", 1)


def test_compiled_append_of_elements_writes_the_same_bytes(tmp_path, monkeypatch):
    """A split batch (several chunks of half the ring, tags, big frames) goes
    through the C chunk append as a list of items does through Python."""
    c, py = _pair(tmp_path, monkeypatch)
    try:
        for tags, n, pad in ((b"", 2000, 0), (b'["a","b"]', 40, 3000), (b"", 3, 30_000)):
            vals = [{"i": i, "p": "x" * pad} for i in range(n)]
            el = _cpool.split_objects(msgspec.json.encode(vals), tags, n)
            items = [(tags, msgspec.json.encode(v)) for v in vals]
            assert _outcome(c._append_seqs_c, el) == _outcome(py._append_seqs_py, items)
            assert _file_bytes(c) == _file_bytes(py)
        big = _cpool.split_objects(b'[{},{"p":"' + b"x" * POOL_SIZE + b'"}]', b"", 2)
        a, b = _outcome(c._append_seqs_c, big), _outcome(py._append_seqs_py, list(big))
        assert a == b and a[0] == "error" and a[1].label == "Usage"
        assert _file_bytes(c) == _file_bytes(py)
    finally:
        c.close()
        py.close()


class _Point(msgspec.Struct):
    x: int
    y: str = "é"


@dataclasses.dataclass
class _Box:
    w: float
    items: list


class _Sub(dict):
    pass


def _stored(pool: Pool, seqs) -> list:
    """(tags, payload) of each stored frame."""
    return [pool._file().get_frame(s)[2:] for s in seqs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vals=_objects, tags=st.sampled_from([None, [], ["a"], ["t1", "t2"]]))
def test_extend_stores_the_per_value_encodings(tmp_path_factory, vals, tags):
    vals = vals + [_Point(3), _Box(1.5, [_Point(1, "]")]), _Sub(k="[,]"),
                   {"raw": msgspec.Raw(b'{"r":[1,"]"]}')}, msgspec.Raw(b'{"q":null}')]
    with Client(tmp_path_factory.mktemp("ext")) as c, c.create_pool("p", 1 << 20) as p:
        seqs = p.extend(vals, tags)
        blob = msgspec.json.encode(tags) if tags else b""
        want = [(blob, msgspec.json.encode(v)) for v in vals]
        assert _stored(p, seqs) == want
        msgs = p.append_many(iter(vals), tags)  # split the same way; Messages as before
        assert _stored(p, [m.seq for m in msgs]) == want
        assert [m.raw for m in msgs] == [p.get(m.seq).raw for m in msgs]
        assert [m.data for m in msgs] == vals  # the values themselves, as before


def _error_of(fn, *args):
    try:
        fn(*args)
    except PlasmiteError as exc:
        return exc.kind, str(exc), exc.hint, exc.committed
    return None


@pytest.mark.parametrize("vals,tags", [
    ([{"ok": 1}, [1, 2]], None), ([{"a": 1}, 5], ["t"]), ([{"a": 1}, "s"], None), ([None], None),
    ([{"a": object()}], None), ([{"a": 1}, {"b": 1j}], None), ([{"a": 1}], "t"), ([{"a": 1}], [""]),
    ([{"a": 1}, [1]], "t"), ([msgspec.Raw(b' {"a":1}')], None), ([msgspec.Raw(b"[1]")], None),
])
@pytest.mark.parametrize("method", ["extend", "append_many"])
def test_extend_refuses_as_the_per_value_path(tmp_path, vals, tags, method):
    """The same error (kind, message, hint, committed) with the split as
    without it (``_split = None``: the per-value path), nothing stored."""
    with Client(tmp_path) as c, c.create_pool("p", 1 << 20) as p:
        got = _error_of(getattr(p, method), vals, tags)
        p._split = None
        assert got is not None and got == _error_of(getattr(p, method), vals, tags)
        assert got[0].label == "Usage" and got[3] == [] and p.bounds() == (None, None)


def test_extend_falls_back_for_what_it_cannot_split(tmp_path):
    """Raw JSON that is not what an encoder writes is stored value by value,
    as before the split existed."""
    odd = [msgspec.Raw(b'{ "a" : 1 }'), msgspec.Raw(b'{"a":1},{"b":2}'), {"r": msgspec.Raw(b"[1,2]")}]
    with Client(tmp_path) as c, c.create_pool("p", 1 << 20) as p:
        seqs = p.extend(odd)
        assert _stored(p, seqs) == [(b"", msgspec.json.encode(v)) for v in odd]
