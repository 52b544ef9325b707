"""Differential fuzzing of the compiled code of plasmite_speedups against its
Python reference, with atheris (not part of tox): the read loops
(``_frames``, against plasmite_core.framescan), the Message fields
(``_message``, against envelope._MessageFields) and the locked append and get
by seq (``_pool.Ring``, against pool.py's ``*_py`` methods). Build the
extension with AddressSanitizer to catch memory errors:

    pip install atheris
    CFLAGS="-fsanitize=address -fno-omit-frame-pointer" pip install --no-build-isolation ./plasmite_speedups
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \\
        python tests/fuzz/fuzz_speedups.py -max_total_time=120

The first byte picks the target (odd: pool; else bit 1 set: split; else bit
2 set: message; else scan). Scan: the input is a ring chunk (a few
frames made valid from the input, then raw input bytes), its physical offset,
the ring size and a limit; both scans must return the same frames and the same
stop status, and the envelopes of the frames must be byte-identical. Pool: a
small pool holding a few messages is damaged where the input says (ring,
index, state slots, header words), copied twice, then gets, single appends and
batches run on one copy through the C calls and on the other through the
Python reference, with the same injected clock; answers, errors and the final
bytes must be equal. Split: the input (wrapped in ``[`` ``]`` or not) as an
encoded JSON array for ``_pool.split_objects`` and
``jsonsplit.split_objects_py``: both must give the same items, and a split
must tile the input into elements that start with ``{``. Message: messages
of random seq, time, tags and payload bytes built by ``_message.build`` and
the pure reference fields of each; ``data``, ``raw`` and ``tags`` (in an order
the input picks, then again from the cache) must give the same values or the
same errors.
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
p = os.path.join(_ROOT, "plasmite_core/src")
if os.path.isdir(p) and p not in sys.path:
    sys.path.insert(0, p)

from plasmite_core import envelope  # noqa: E402
from plasmite_core import format as F  # noqa: E402
from plasmite_core import framescan, jsonsplit  # noqa: E402
from plasmite_core import pool as core_pool  # noqa: E402
from plasmite_core.errors import PlasmiteError  # noqa: E402
from plasmite_speedups import _frames, _message, _pool  # noqa: E402

_REST = struct.Struct("<QQIHBB")


def _frame(seq: int, t: int, tags: bytes, payload: bytes) -> bytes:
    body = _REST.pack(seq, t, len(payload), len(tags), 1, 0) + tags + payload
    flen = (8 + len(body) + 7) & ~7
    return struct.pack("<II", flen, zlib.crc32(body) | 1) + body + bytes(flen - 8 - len(body))


def one_input(data: bytes) -> None:
    if data[:1] and data[0] & 1:
        pool_input(data[1:])
    elif data[:1] and data[0] & 2:
        split_input(data[1:])
    elif data[:1] and data[0] & 4:
        message_input(data[1:])
    else:
        scan_input(data[1:])


# Message's own methods on the pure fields: the reference of the compiled Message.
_PureMessage = type("Message", (envelope._MessageFields,),
                    {k: v for k, v in vars(envelope.Message).items() if k not in ("__slots__", "__dict__", "__weakref__")})


def _message_outcome(m, what: str):
    try:
        return ("ok", getattr(m, what))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def message_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    seq = fdp.ConsumeIntInRange(0, (1 << 64) - 1)
    t = fdp.ConsumeIntInRange(0, (1 << 64) - 1)
    tags = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 24))
    order = fdp.ConsumeIntInRange(0, 5)
    n = fdp.ConsumeIntInRange(1, 6)  # one build: a group when n > 1
    payloads = [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)) for _ in range(n - 1)]
    payloads.append(fdp.ConsumeBytes(fdp.remaining_bytes()))
    frames = [(seq + i, t + i, tags, payload) for i, payload in enumerate(payloads)]
    got = _message.build(envelope.Message, frames, None)
    want = [_PureMessage(*f) for f in frames]
    names = [("data", "raw", "tags"), ("raw", "data", "tags"), ("tags", "raw", "data")][order % 3]
    first = order % n
    for i in list(range(first, n)) + list(range(first)):
        for what in names + names:
            assert _message_outcome(got[i], what) == _message_outcome(want[i], what), (frames, i, what)


def split_input(data: bytes) -> None:
    head = data[0] if data else 0
    array = b"[" + data[1:] + b"]" if head & 0x80 else data[1:]
    count = head & 0x7F
    a = jsonsplit.split_objects_py(array, b'["t"]', count)
    b = _pool.split_objects(array, b'["t"]', count)
    assert a == (None if b is None else list(b)), (array, count)
    if a is not None:
        assert len(a) == count and b"[" + b",".join(el for _, el in a) + b"]" == array
        assert all(el[:1] == b"{" for _, el in a)


def scan_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    buf = b""
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        tags = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
        buf += _frame(fdp.ConsumeIntInRange(0, 2**64 - 1), fdp.ConsumeIntInRange(0, 2**63), tags, payload)
    phys = fdp.ConsumeIntInRange(0, 1 << 16) & ~7
    ring = fdp.ConsumeIntInRange(0, 1 << 17)
    limit = fdp.ConsumeIntInRange(0, 8)
    buf += fdp.ConsumeBytes(fdp.remaining_bytes())
    a: list = []
    b: list = []
    ra = framescan.scan_chunk_py(buf, phys, ring, limit, a)
    rb = _frames.scan_chunk(buf, phys, ring, limit, b)
    assert ra == rb, (ra, rb)
    assert a == b
    try:
        ea = framescan.envelopes_py(a)
    except (OverflowError, ValueError, OSError):
        ea = None
    try:
        eb = _frames.envelopes(b)
    except OverflowError:
        eb = None
    assert ea == eb or ea is None or eb is None, (ea, eb)


_TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None  # libFuzzer exits without Python's clean-up: one dir per input
_SIZE = 64 * 1024
_SEED: dict = {}


class _Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def _seed_image(small_index: bool) -> bytes:
    """A pool with a few dozen messages, wrapped once (built once per shape)."""
    if small_index not in _SEED:
        with tempfile.TemporaryDirectory(prefix="fuzz-ring-", dir=_TMP) as d:
            pf = core_pool.PoolFile.create(os.path.join(d, "seed.plasmite"), _SIZE, 16 if small_index else None)
            for i in range(60):
                pf._append_py(b'["s"]' if i % 4 == 0 else b"", b'{"i":%d,"b":"%s"}' % (i, b"x" * (i * 37 % 3000)))
            _SEED[small_index] = bytes(pf.mm)
            pf.close()
    return _SEED[small_index]


def _outcome(pf, fn, *args):
    core_pool._time_ns = pf.test_clock
    try:
        return ("ok", fn(*args))
    except PlasmiteError as exc:
        return ("error", exc.kind, str(exc).replace("/c/", "/X/").replace("/p/", "/X/"))


def pool_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    image = bytearray(_seed_image(fdp.ConsumeBool()))
    # damage: (offset past the static header, xor) pairs, or 8-byte words
    # overwritten (the state slots, the index and frame headers are words)
    lo = F.STATIC_CRC_OFFSET + 4
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        off = fdp.ConsumeIntInRange(lo, _SIZE - 8)
        if fdp.ConsumeBool():
            image[off] ^= fdp.ConsumeIntInRange(1, 255)
        else:
            image[off & ~7 : (off & ~7) + 8] = fdp.ConsumeBytes(8).ljust(8, b"\0")
    if F.choose_state(bytes(image[F.STATE_A_OFFSET : F.STATE_A_OFFSET + 128])) is None:
        return  # both slots damaged: the reference retries for 0.1 s before Corrupt
    with tempfile.TemporaryDirectory(prefix="fuzz-ring-", dir=_TMP) as tmp:
        _compare_on_copies(fdp, image, tmp)


def _compare_on_copies(fdp, image: bytearray, tmp: str) -> None:
    files = []
    for name in ("c", "p"):
        d = os.path.join(tmp, name)
        os.mkdir(d)
        path = os.path.join(d, "w.plasmite")
        with open(path, "wb") as f:
            f.write(image)
        pf = core_pool.PoolFile.open(path)
        pf.test_clock = _Clock()
        files.append(pf)
    c, p = files
    if c._ring is None:  # PLASMITE_PURE=1: pool.py made none
        c._ring = _pool.Ring(c.mm, c.ring_offset, c.ring_size, c.index_offset, c.index_capacity)
    c._ring.clock = c.test_clock
    try:
        for _ in range(fdp.ConsumeIntInRange(1, 8)):
            op = fdp.ConsumeIntInRange(0, 2)
            if op == 0:
                seq = fdp.ConsumeIntInRange(0, 200)
                assert _outcome(c, c._get_frame_c, seq) == _outcome(p, p._get_frame_py, seq), seq
            elif op == 1:
                item = (b"" if fdp.ConsumeBool() else b'["t"]', b"{}" + b" " * fdp.ConsumeIntInRange(0, 40000))
                assert _outcome(c, c._append_c, *item) == _outcome(p, p._append_py, *item)
            else:
                items = [(b"", b"{}" + b" " * fdp.ConsumeIntInRange(0, 9000)) for _ in range(fdp.ConsumeIntInRange(1, 12))]
                assert _outcome(c, c._append_batch_c, items) == _outcome(p, p._append_batch_py, items)
        assert bytes(c.mm) == bytes(p.mm)
    finally:
        c.close()
        p.close()


def mutate_corpus(corpus: str, runs: int) -> None:
    """Random mutations of a guided corpus, for runs without coverage feedback
    (gcc's ASan runtime takes libFuzzer's coverage hooks)."""
    import random

    rng = random.Random(runs)
    seeds = [open(os.path.join(corpus, f), "rb").read() for f in sorted(os.listdir(corpus))] or [b""]
    for i in range(runs):
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.randrange(4)
            at = rng.randrange(len(b) + 1)
            if op == 0 and at < len(b):
                b[at] ^= 1 << rng.randrange(8)
            elif op == 1:
                b[at:at] = rng.randbytes(rng.randint(1, 8))
            elif op == 2:
                del b[at : at + rng.randint(1, 8)]
            else:
                b[at : at + 8] = rng.choice((b"\xff" * 8, bytes(8), rng.randbytes(8)))
        one_input(bytes(b))
    print(f"mutate_corpus: {runs} runs from {len(seeds)} seeds, no mismatch")


if __name__ == "__main__" and sys.argv[1:2] == ["--mutate"]:
    # python fuzz_speedups.py --mutate CORPUS_DIR RUNS
    mutate_corpus(sys.argv[2], int(sys.argv[3]))
elif __name__ == "__main__":
    # Coverage from the reference's branches guides the inputs to the C ones.
    framescan.scan_chunk_py = atheris.instrument_func(framescan.scan_chunk_py)
    framescan.envelopes_py = atheris.instrument_func(framescan.envelopes_py)
    jsonsplit.split_objects_py = atheris.instrument_func(jsonsplit.split_objects_py)
    jsonsplit._object_end = atheris.instrument_func(jsonsplit._object_end)
    for name in ("_decode_data", "_format_raw", "data_json", "tags_json"):
        setattr(envelope.Message, name, atheris.instrument_func(getattr(envelope.Message, name)))
    PF = core_pool.PoolFile
    for name in ("_append_py", "_append_batch_py", "_append_chunk", "_evict", "_get_frame_py", "locate", "read_frame"):
        setattr(PF, name, atheris.instrument_func(getattr(PF, name)))
    pool_input = atheris.instrument_func(pool_input)
    atheris.Setup(sys.argv, atheris.instrument_func(one_input))
    atheris.Fuzz()
