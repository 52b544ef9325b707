"""Coverage-guided fuzzing of pool files with atheris (not part of tox).

    pip install atheris
    python tests/fuzz/fuzz_pool.py -max_total_time=300 -timeout=20
    python tests/fuzz/fuzz_pool.py CORPUS_DIR -runs=100000   # libFuzzer options pass through

A reference pool (64 KiB, wrapped several times, live span across the ring
end, tags, a pad frame) is built once. Each input is a list of edits applied
to a copy: byte flips and overwrites biased towards the header, state slots,
index, frames and the wrap point; truncation and extension; and
"forged" edits that rewrite a header, state slot or frame field *and fix up its
CRC*, so the fuzzer reaches the logic behind the checksums (inconsistent
geometry, tail past head, seqs out of order). The copy is then read every
way (open, info, bounds, tail, get of every seq, doctor, repair).

Acceptable outcomes: the reference data for a seq, NotFound, a CorruptError
with the path and an offset, or (when the version field changed) a Usage
error about a newer format. Unforged damage to a byte readers depend on must
be reported by doctor. Anything else (another exception, wrong data for a seq,
a skipped message, a hang past -timeout, a signal) is a crash that libFuzzer
reports with a reproducer.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import zlib

import atheris

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
for sub in ("plasmite_core/src", "plasmite_codecs/src"):
    p = os.path.join(_ROOT, sub)
    if os.path.isdir(p) and p not in sys.path:
        sys.path.insert(0, p)

with atheris.instrument_imports():
    from plasmite_core import doctor as D
    from plasmite_core import format as F
    from plasmite_core.client import Client
    from plasmite_core.errors import CorruptError, NotFoundError, PlasmiteError, UsageError

_WORK = tempfile.mkdtemp(prefix="plasmite-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


def _build_reference():
    d = os.path.join(_WORK, "ref")
    os.makedirs(d, exist_ok=True)
    with Client(d) as c, c.create_pool("ref", 64 * 1024, index_capacity=None) as pool:
        pf = pool._file()
        R = pf.ring_size
        i = 0
        while True:
            i += 1
            body = "p" * ((i * 53) % 1700)
            if i % 7 == 0:
                pool.append_many([{"i": i, "j": j} for j in range(4)], tags=["batch"])
            else:
                pool.append({"i": i, "b": body}, [f"t{i % 3}"] * (i % 3))
            s = pf.read_state()
            if s.head > 4 * R and s.tail % R > s.head % R and R - s.head % R > 600:
                break
        oldest, newest = pool.bounds()
        ref = {m.seq: m.raw for m in pool.tail(since_seq=oldest, timeout_ms=0)}
    path = os.path.join(d, "ref.plasmite")
    with open(path, "rb") as f:
        data = f.read()
    return data, ref


REF_BYTES, REF = _build_reference()
HDR = F.parse_static(REF_BYTES, len(REF_BYTES))
GEO = HDR.geometry
STATE = F.choose_state(REF_BYTES[F.STATE_A_OFFSET : F.STATE_A_OFFSET + 128])
R, RO = GEO.ring_size, GEO.ring_offset
FRAMES: list[int] = []  # file offsets of live frames
_pos = STATE.tail
while _pos < STATE.head:
    FRAMES.append(RO + _pos % R)
    _pos += struct.unpack_from("<I", REF_BYTES, RO + _pos % R)[0]


def _meaningful() -> set[int]:
    out = set(range(0, F.STATIC_CRC_OFFSET + 4))
    for base in (F.STATE_A_OFFSET, F.STATE_B_OFFSET):
        out.update(range(base, base + 52))
    for off in FRAMES:
        flen, crc = struct.unpack_from("<II", REF_BYTES, off)
        if crc == F.PAD_MARK:
            out.update(range(off, off + 8))
            continue
        _, _, seq, _, pl, tl, _, _ = F.FRAME_HEAD.unpack_from(REF_BYTES, off)
        out.update(range(off, off + 32 + tl + pl))
        if seq > STATE.newest - GEO.index_capacity:
            io = GEO.index_offset + (seq % GEO.index_capacity) * 4
            out.update(range(io, io + 4))
    return out


MEANINGFUL = _meaningful()
REGIONS = [
    (0, F.STATIC_CRC_OFFSET + 4),
    (F.STATE_A_OFFSET, F.STATE_B_OFFSET + 64),
    (GEO.index_offset, RO),
    (RO, RO + R),
    (RO + R - 256, RO + R),
    (0, GEO.file_size),
]
STATE_FIELDS = 6  # gen head tail newest oldest newest_time (u64 each)
STATIC_FIELDS = [(8, "I"), (12, "I"), (16, "Q"), (24, "Q"), (32, "Q"), (40, "Q"), (48, "Q"), (56, "Q"), (80, "I")]
FRAME_FIELDS = [(0, "I"), (8, "Q"), (16, "Q"), (24, "I"), (28, "H"), (30, "B"), (31, "B")]
INTERESTING = [0, 1, 7, 8, 40, 4096, R - 8, R, R + 8, GEO.file_size, 2**31, 2**32 - 1, 2**63, 2**64 - 1]


def _value(fdp, fmt: str) -> int:
    bits = struct.calcsize(fmt) * 8
    if fdp.ConsumeBool():
        v = fdp.PickValueInList(INTERESTING)
    else:
        v = fdp.ConsumeIntInRange(0, 2**bits - 1)
    return v % (2**bits)


def _mutate(data: bytes):
    """Returns (bytes, touched offsets or None, version_hit, forged)."""
    fdp = atheris.FuzzedDataProvider(data)
    buf = bytearray(REF_BYTES)
    touched: set[int] = set()
    version_hit = forged = resized = False
    resizes = []
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        op = fdp.ConsumeIntInRange(0, 7)
        if op <= 2:  # flip / overwrite bytes in a region
            lo, hi = REGIONS[fdp.ConsumeIntInRange(0, len(REGIONS) - 1)]
            off = fdp.ConsumeIntInRange(lo, hi - 1)
            n = fdp.ConsumeIntInRange(1, 16)
            for k in range(off, min(off + n, len(buf))):
                buf[k] = (buf[k] ^ fdp.ConsumeIntInRange(1, 255)) if op < 2 else fdp.ConsumeIntInRange(0, 255)
                touched.add(k)
        elif op == 3:  # forged state slot field (CRC fixed up)
            base = (F.STATE_A_OFFSET, F.STATE_B_OFFSET)[fdp.ConsumeIntInRange(0, 1)]
            field = fdp.ConsumeIntInRange(0, STATE_FIELDS - 1)
            struct.pack_into("<Q", buf, base + 8 * field, _value(fdp, "Q"))
            struct.pack_into("<I", buf, base + 48, zlib.crc32(bytes(buf[base : base + 48])))
            forged = True
        elif op == 4:  # forged static header field
            off, fmt = STATIC_FIELDS[fdp.ConsumeIntInRange(0, len(STATIC_FIELDS) - 1)]
            struct.pack_into("<" + fmt, buf, off, _value(fdp, fmt))
            struct.pack_into("<I", buf, F.STATIC_CRC_OFFSET, zlib.crc32(bytes(buf[: F.STATIC_CRC_OFFSET])))
            version_hit |= off == 8
            forged = True
        elif op == 5:  # forged frame field
            foff = FRAMES[fdp.ConsumeIntInRange(0, len(FRAMES) - 1)]
            off, fmt = FRAME_FIELDS[fdp.ConsumeIntInRange(0, len(FRAME_FIELDS) - 1)]
            struct.pack_into("<" + fmt, buf, foff + off, _value(fdp, fmt))
            _, _, _, _, pl, tl, _, _ = F.FRAME_HEAD.unpack_from(buf, foff)
            end = min(foff + 32 + tl + pl, len(buf))
            struct.pack_into("<I", buf, foff + 4, zlib.crc32(bytes(buf[foff + 8 : end])) | 1)
            forged = True
        elif op == 6:  # truncate (applied after the in-place edits)
            cut = fdp.ConsumeIntInRange(0, len(buf))
            resizes.append(lambda b, cut=cut: b.__delitem__(slice(cut, None)))
        else:  # extend
            more = bytes([fdp.ConsumeIntInRange(0, 255)]) * fdp.ConsumeIntInRange(1, 70000)
            resizes.append(lambda b, more=more: b.extend(more))
    for resize in resizes:
        resize(buf)
        resized = True
    if not resized:
        touched = {k for k in touched if buf[k] != REF_BYTES[k]}  # overwrites may restore a byte
    version_hit |= any(8 <= k < 12 for k in touched) or (resized and buf[8:12] != REF_BYTES[8:12])
    return bytes(buf), (None if resized else touched), version_hit, forged


def _ok_error(exc: PlasmiteError, path: str, version_hit: bool, forged: bool = False) -> None:
    if isinstance(exc, NotFoundError) and exc.seq is not None:
        return
    if isinstance(exc, CorruptError) and exc.path == path and exc.offset is not None:
        return
    if isinstance(exc, UsageError) and version_hit and "newer" in exc.message:
        return
    if isinstance(exc, UsageError) and forged and "codec" in exc.message:
        return  # a CRC-valid header naming a codec that is not installed
    raise AssertionError(f"unexpected error: {type(exc).__name__} {exc.to_dict()}")


def _read_all(path: str, version_hit: bool, forged: bool, lost: list | None = None) -> None:
    """Every read; ``lost``: seq ranges a repair reported dropped (gaps allowed there)."""
    try:
        c = Client(os.path.dirname(path))
        pool = c.open_pool(path)
    except PlasmiteError as exc:
        _ok_error(exc, path, version_hit, forged)
        return
    try:
        for op in (pool.info, pool.bounds):
            try:
                op()
            except PlasmiteError as exc:
                _ok_error(exc, path, version_hit, forged)
        got = []
        try:
            for m in pool.tail(since_seq=0, timeout_ms=0, max_messages=len(REF) + 50):
                if not forged:
                    assert m.seq in REF and m.raw == REF[m.seq], f"wrong data for seq {m.seq}"
                got.append(m.seq)
        except PlasmiteError as exc:
            _ok_error(exc, path, version_hit, forged)
        if got and not forged:
            dropped = {s for a, b in (lost or []) for s in range(a, b + 1)}
            want = [s for s in range(got[0], got[-1] + 1) if s not in dropped]
            assert got == want, "messages skipped without an error"
        for seq in list(range(min(REF) - 2, max(REF) + 3)) + [0, 2**40]:
            try:
                m = pool.get(seq)
            except PlasmiteError as exc:
                _ok_error(exc, path, version_hit, forged)
                continue
            if not forged:
                assert seq in REF and m.raw == REF[seq], f"get({seq}) returned wrong data"
        for kw in ({"last": 3}, {"since_time_ns": 1}):
            try:
                list(pool.tail(timeout_ms=0, max_messages=50, **kw))
            except PlasmiteError as exc:
                _ok_error(exc, path, version_hit, forged)
    finally:
        pool.close()
        c.close()


def TestOneInput(data: bytes) -> None:
    buf, touched, version_hit, forged = _mutate(data)
    path = os.path.join(_WORK, "case.plasmite")
    with open(path, "wb") as f:
        f.write(buf)
    _read_all(path, version_hit, forged)
    try:
        report = D.check_pool(path)
    except PlasmiteError as exc:
        _ok_error(exc, path, version_hit, forged)
        return
    if not forged and touched and buf != REF_BYTES and touched & MEANINGFUL:
        assert not report.ok, f"doctor missed damage at {sorted(touched)[:8]}"
    if not report.ok and not any(i.code == "header" for i in report.issues):
        try:
            fixed = D.repair_pool(path)
        except PlasmiteError as exc:
            _ok_error(exc, path, version_hit, forged)
            return
        after = D.check_pool(path)
        # Forged (CRC-valid) lies such as a time going backwards are reported
        # but not all are repairable; real damage always is.
        assert after.ok or forged, f"repair left issues: {after.to_dict()}"
        _read_all(path, version_hit, forged, fixed.lost)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
