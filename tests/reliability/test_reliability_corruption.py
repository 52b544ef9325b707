"""Corruption campaign: damaged pool files never yield wrong data, hangs or crashes.

A reference pool (wrapped several times, with a pad frame at the ring end, tags
and payloads of many sizes) is copied, damaged with hypothesis (random and
targeted byte flips in the header, state slots, index, live frames and around
the wrap point; truncation; extension), and read every way: open, info,
bounds, a tail from the oldest seq, get of every seq, doctor. Each read must
return exactly the reference data for its seq, or a CorruptError naming the
path and a byte offset (a damaged format-version field may also read as a
Usage error "newer version"), within a time limit. Doctor must report every
fault that lands on a byte readers depend on, and repair must leave a pool
that doctor finds clean and that still serves only reference data.
"""

from __future__ import annotations

import json
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from plasmite import Client  # noqa: E402
from plasmite_core import format as F  # noqa: E402
from plasmite_core.doctor import check_pool, repair_pool  # noqa: E402
from plasmite_core.errors import CorruptError, NotFoundError, PlasmiteError, UsageError  # noqa: E402

from reliability_common import size  # noqa: E402

EXAMPLES = size(150, 5000)
COUNTS = {"cases": 0, "corrupt_errors": 0, "doctor_found": 0, "harmless": 0}  # shown after the run


@pytest.fixture(scope="module", autouse=True)
def _report_counts(figures):
    yield
    figures["reliability corruption campaign"] = dict(COUNTS)


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang("read did not finish within its time limit")


def _build_reference(d: Path, index_capacity=None) -> tuple[Path, dict[int, bytes]]:
    """A 64 KiB pool, wrapped several times, its live span crossing the ring end."""
    with Client(d) as c, c.create_pool("ref", 64 * 1024, index_capacity=index_capacity) as pool:
        pf = pool._file()
        R = pf.ring_size
        i = 0
        while True:
            i += 1
            body = "p" * ((i * 53) % 1700)
            tags = [f"t{i % 3}"] * (i % 3)
            if i % 7 == 0:
                pool.append_many([{"i": i, "j": j, "b": body[:200]} for j in range(4)], tags=tags or None)
            else:
                pool.append({"i": i, "b": body}, tags)
            s = pf.read_state()
            if s.head > 4 * R and s.tail % R > s.head % R and R - s.head % R > 600:
                break
        oldest, newest = pool.bounds()
        ref = {m.seq: m.raw for m in pool.tail(since_seq=oldest, timeout_ms=0)}
        assert sorted(ref) == list(range(oldest, newest + 1))
    return d / "ref.plasmite", ref


def _meaningful(path: Path) -> set[int]:
    """Byte offsets readers depend on (a flip there must be found by doctor)."""
    buf = path.read_bytes()
    hdr = F.parse_static(buf, len(buf))
    geo = hdr.geometry
    st_ = F.choose_state(buf[F.STATE_A_OFFSET : F.STATE_A_OFFSET + 128])
    R, ro = geo.ring_size, geo.ring_offset
    out = set(range(0, F.STATIC_CRC_OFFSET + 4))
    for base in (F.STATE_A_OFFSET, F.STATE_B_OFFSET):
        out.update(range(base, base + 52))
    pos = st_.tail
    while pos < st_.head:
        phys = pos % R
        flen, crc = struct.unpack_from("<II", buf, ro + phys)
        if crc == F.PAD_MARK:
            out.update(range(ro + phys, ro + phys + 8))
        else:
            _, _, seq, _, pl, tl, _, _ = F.FRAME_HEAD.unpack_from(buf, ro + phys)
            out.update(range(ro + phys, ro + phys + 32 + tl + pl))
            if geo.index_capacity and seq > st_.newest - geo.index_capacity:
                io = geo.index_offset + (seq % geo.index_capacity) * 4
                out.update(range(io, io + 4))
        pos += flen
    return out


@pytest.fixture(scope="module", params=["full-index", "small-index"])
def reference(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"ref-{request.param}")
    path, ref = _build_reference(d, None if request.param == "full-index" else 40)
    data = path.read_bytes()
    hdr = F.parse_static(data, len(data))
    st_ = F.choose_state(data[F.STATE_A_OFFSET : F.STATE_A_OFFSET + 128])
    return {"bytes": data, "ref": ref, "geo": hdr.geometry, "state": st_, "meaningful": _meaningful(path)}


def _check_error(exc: PlasmiteError, path: Path, *, version_hit: bool) -> None:
    if isinstance(exc, CorruptError):
        assert exc.path == str(path), exc.to_dict()
        assert exc.offset is not None and 0 <= exc.offset, exc.to_dict()
        COUNTS["corrupt_errors"] += 1
        return
    if isinstance(exc, UsageError) and version_hit and "newer" in exc.message:
        return
    raise AssertionError(f"wrong error kind: {type(exc).__name__}: {exc.to_dict()}")


def _read_everything(path: Path, ref: dict[int, bytes], *, version_hit: bool = False,
                     lost: list | None = None) -> list[int]:
    """Every read API; asserts reference data or a well-formed error. Returns
    seqs read. ``lost``: seq ranges a repair reported as dropped (a gap there
    is expected, anywhere else it is a silent skip)."""
    got: list[int] = []
    try:
        c = Client(path.parent)
        pool = c.open_pool(str(path))
    except PlasmiteError as exc:
        _check_error(exc, path, version_hit=version_hit)
        return got
    try:
        for op in (pool.info, pool.bounds):
            try:
                op()
            except PlasmiteError as exc:
                _check_error(exc, path, version_hit=version_hit)
        try:
            oldest, _newest = pool.bounds()
        except PlasmiteError:
            oldest = _newest = None
        try:
            last = 0
            for m in pool.tail(since_seq=oldest or 0, timeout_ms=0, max_messages=len(ref) + 10):
                assert m.seq in ref and m.raw == ref[m.seq], f"wrong data for seq {m.seq}"
                assert m.seq > last
                last = m.seq
                got.append(m.seq)
        except PlasmiteError as exc:
            _check_error(exc, path, version_hit=version_hit)
        if got:
            # nothing silently skipped: a damaged pool reads contiguously or fails
            dropped = {s for a, b in (lost or []) for s in range(a, b + 1)}
            want = [s for s in range(got[0], got[-1] + 1) if s not in dropped]
            assert got == want, "tail skipped messages without an error"
        for seq in range(min(ref) - 2, max(ref) + 3):
            try:
                m = pool.get(seq)
            except NotFoundError:
                continue
            except PlasmiteError as exc:
                _check_error(exc, path, version_hit=version_hit)
                continue
            assert seq in ref and m.raw == ref[seq], f"get({seq}) returned wrong data"
    finally:
        pool.close()
        c.close()
    return got


def _run_case(reference, mutate) -> None:
    COUNTS["cases"] += 1
    data = bytearray(reference["bytes"])
    touched, version_hit = mutate(data)
    if touched is not None:  # repeated flips of one byte may cancel out
        touched = {k for k in touched if data[k] != reference["bytes"][k]}
    d = Path(tempfile.mkdtemp(prefix="plasmite-corrupt-"))
    path = d / "ref.plasmite"
    path.write_bytes(bytes(data))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        _read_everything(path, reference["ref"], version_hit=version_hit)
        try:
            report = check_pool(path)
        except PlasmiteError as exc:
            _check_error(exc, path, version_hit=version_hit)
            report = None
        changed = bytes(data) != reference["bytes"]
        hit = changed and (touched is None or touched & reference["meaningful"])
        if report is not None:
            if hit:
                assert not report.ok, f"doctor missed damage at {sorted(touched or [])[:8]}"
                COUNTS["doctor_found"] += 1
            elif report.ok:
                COUNTS["harmless"] += 1
            if not report.ok and not any(i.code == "header" for i in report.issues):
                fixed = repair_pool(path)
                assert fixed.repaired
                after = check_pool(path)
                assert after.ok, after.to_dict()
                _read_everything(path, reference["ref"], lost=fixed.lost)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        shutil.rmtree(d, ignore_errors=True)


def _regions(ref) -> dict[str, tuple[int, int]]:
    geo, s = ref["geo"], ref["state"]
    R, ro = geo.ring_size, geo.ring_offset
    tail_phys, head_phys = s.tail % R, s.head % R
    return {
        "static": (0, F.STATIC_CRC_OFFSET + 4),
        "state": (F.STATE_A_OFFSET, F.STATE_B_OFFSET + 64),
        "index": (geo.index_offset, ro),
        "live_frames": (ro, ro + head_phys),  # the live span that wrapped to the ring start
        "older_frames": (ro + tail_phys, ro + R),
        "wrap_point": (ro + R - 200, ro + R),
        "ring_start": (ro, ro + 200),
        "anywhere": (0, geo.file_size),
    }


def _flips(reference):
    regions = _regions(reference)

    @st.composite
    def strat(draw):
        name = draw(st.sampled_from(sorted(regions)))
        lo, hi = regions[name]
        n = draw(st.integers(1, 4))
        offs = [draw(st.integers(lo, hi - 1)) for _ in range(n)]
        xors = [draw(st.integers(1, 255)) for _ in range(n)]
        return name, list(zip(offs, xors))

    return strat()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(data=st.data())
def test_byte_flips(reference, data):
    name, flips = data.draw(_flips(reference), label="flips")

    def mutate(buf):
        for off, x in flips:
            buf[off] ^= x
        return {off for off, _ in flips}, any(8 <= off < 12 for off, _ in flips)

    _run_case(reference, mutate)


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_truncation_and_extension(reference, data):
    n = len(reference["bytes"])
    new_len = data.draw(st.one_of(st.integers(0, n - 1), st.integers(n + 1, n + 70000),
                                  st.sampled_from([0, 7, 87, 4095, 4096, n - 8, n - 1, n + 1, n + 4096])))
    fill = data.draw(st.sampled_from([b"\0", b"\xff", b"A"]))

    def mutate(buf):
        if new_len < n:
            del buf[new_len:]
        else:
            buf.extend(fill * (new_len - n))
        return None, False

    _run_case(reference, mutate)
    # every size change is refused at open as Corrupt with the path
    d = Path(tempfile.mkdtemp(prefix="plasmite-trunc-"))
    try:
        p = d / "t.plasmite"
        b = reference["bytes"]
        p.write_bytes(b[:new_len] if new_len < n else b + fill * (new_len - n))
        with pytest.raises(CorruptError) as ei:
            Client(d).open_pool(str(p))
        assert ei.value.path == str(p) and ei.value.offset is not None
        assert not check_pool(p).ok
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("region", ["static", "state", "index", "live_frames", "older_frames", "wrap_point"])
def test_every_byte_of_a_region_once(reference, region):
    """Targeted: flip bytes spread over each region (CI ~60 per region, soak ~1500;
    every byte of the header and state slots)."""
    lo, hi = _regions(reference)[region]
    stride = max(1, (hi - lo) // (1500 if size(0, 1) else 60))
    for off in range(lo, hi, stride):
        _run_case(reference, lambda buf, off=off: (buf.__setitem__(off, buf[off] ^ 0x41), ({off}, 8 <= off < 12))[1])


def test_frame_length_fields(reference):
    """Targeted: the len field of every live frame (outside the CRC) changed by
    8-aligned amounts must read as Corrupt, never as skipped messages."""
    geo, s = reference["geo"], reference["state"]
    R, ro = geo.ring_size, geo.ring_offset
    data = reference["bytes"]
    pos = s.tail
    frames = []
    while pos < s.head:
        flen, crc = struct.unpack_from("<II", data, ro + pos % R)
        frames.append((ro + pos % R, crc == F.PAD_MARK))
        pos += flen
    step = 1 if size(0, 1) else max(1, len(frames) // 12)
    for off, is_pad in frames[::step] + frames[-1:]:
        for x in (8, 64, 512, 1024, 1 << 20):
            def mutate(buf, off=off, x=x):
                struct.pack_into("<I", buf, off, struct.unpack_from("<I", buf, off)[0] ^ x)
                return {off}, False
            _run_case(reference, mutate)


def test_both_state_slots_damaged(reference):
    def mutate(buf):
        buf[F.STATE_A_OFFSET + 3] ^= 1
        buf[F.STATE_B_OFFSET + 3] ^= 1
        return {F.STATE_A_OFFSET + 3, F.STATE_B_OFFSET + 3}, False

    _run_case(reference, mutate)


def test_truncated_while_mapped_does_not_kill_the_reader(tmp_path):
    """A pool truncated while a reader has it mapped: the reader must get an
    error, not SIGBUS. Run in a child process so a signal cannot take pytest down."""
    script = (
        "import os, sys\n"
        "from plasmite import Client\n"
        "from plasmite_core.errors import PlasmiteError\n"
        "c = Client(sys.argv[1]); p = c.create_pool('t', 256 * 1024)\n"
        "for i in range(2000): p.append({'i': i, 'b': 'x' * 100})\n"
        "os.truncate(p.path, 8192)\n"
        "try:\n"
        "    list(p.tail(timeout_ms=0)); p.get(1500)\n"
        "except PlasmiteError as e:\n"
        "    print('ERROR', e.kind.label); sys.exit(0)\n"
        "print('NO ERROR')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    if proc.returncode == -signal.SIGBUS:
        pytest.xfail("known limit: a pool file truncated under a live mapping raises SIGBUS in readers "
                     "(see docs/reliability.md)")
    assert proc.returncode == 0 and proc.stdout.startswith("ERROR"), (proc.returncode, proc.stdout, proc.stderr[-400:])


def test_cli_on_damaged_pools(reference, tmp_path):
    """`pls doctor`, `fetch`, `follow` and `pool info` on damaged files: exit 7
    with a Corrupt JSON error naming the path and the byte offset; no traceback."""
    geo, s = reference["geo"], reference["state"]
    R, ro = geo.ring_size, geo.ring_offset
    data = reference["bytes"]
    # a message frame in the middle of the live span
    pos, frames = s.tail, []
    while pos < s.head:
        flen, crc = struct.unpack_from("<II", data, ro + pos % R)
        if crc != F.PAD_MARK:
            frames.append((ro + pos % R, struct.unpack_from("<Q", data, ro + pos % R + 8)[0]))
        pos += flen
    off, seq = frames[len(frames) // 2]

    def pls(*args):
        proc = subprocess.run([sys.executable, "-m", "plasmite_cli", *args], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        return proc

    def corrupt_error(proc):
        assert proc.returncode == 7, (proc.returncode, proc.stdout[-300:], proc.stderr[-500:])
        err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
        assert err["kind"] == "Corrupt" and err.get("path") and "offset" in err, err
        return err

    frame_hit = tmp_path / "frame.plasmite"
    buf = bytearray(data)
    buf[off + 40] ^= 0x20  # inside the frame's tags/payload
    frame_hit.write_bytes(bytes(buf))
    proc = pls("doctor", str(frame_hit), "--json")
    assert proc.returncode == 7 and str(off) in proc.stdout, proc.stdout
    assert corrupt_error(pls("fetch", str(frame_hit), str(seq)))["offset"] == off
    corrupt_error(pls("follow", str(frame_hit), "--tail", str(len(reference["ref"])), "--timeout", "500ms"))
    # undamaged seqs are still served
    other = frames[0][1]
    proc = pls("fetch", str(frame_hit), str(other))
    assert proc.returncode == 0 and json.loads(proc.stdout)["seq"] == other

    header_hit = tmp_path / "header.plasmite"
    buf = bytearray(data)
    buf[40] ^= 0x01  # ring_offset, covered by the header CRC
    header_hit.write_bytes(bytes(buf))
    for args in (("pool", "info", str(header_hit)), ("fetch", str(header_hit), str(seq)),
                 ("follow", str(header_hit), "--tail", "1", "--timeout", "200ms")):
        corrupt_error(pls(*args))
    proc = pls("doctor", str(header_hit), "--json")
    assert proc.returncode == 7, proc.stdout
