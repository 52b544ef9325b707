"""Differential fuzzing of the compiled loops (plasmite_speedups._frames)
against their Python reference (plasmite_core.framescan), with atheris (not
part of tox). Build the extension with AddressSanitizer to catch memory errors:

    pip install atheris
    CFLAGS="-fsanitize=address -fno-omit-frame-pointer" pip install --no-build-isolation ./plasmite_speedups
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \\
        python tests/fuzz/fuzz_speedups.py -max_total_time=120

Each input is a ring chunk (a few frames made valid from the input, then raw
input bytes), its physical offset, the ring size and a limit. Both scans must
return the same frames and the same stop status; the envelopes of the frames
must be byte-identical.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib

import atheris

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
p = os.path.join(_ROOT, "plasmite_core/src")
if os.path.isdir(p) and p not in sys.path:
    sys.path.insert(0, p)

from plasmite_core import framescan  # noqa: E402
from plasmite_speedups import _frames  # noqa: E402

_REST = struct.Struct("<QQIHBB")


def _frame(seq: int, t: int, tags: bytes, payload: bytes) -> bytes:
    body = _REST.pack(seq, t, len(payload), len(tags), 1, 0) + tags + payload
    flen = (8 + len(body) + 7) & ~7
    return struct.pack("<II", flen, zlib.crc32(body) | 1) + body + bytes(flen - 8 - len(body))


def one_input(data: bytes) -> None:
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


if __name__ == "__main__":
    # Coverage from the reference's branches guides the inputs to the C ones.
    framescan.scan_chunk_py = atheris.instrument_func(framescan.scan_chunk_py)
    framescan.envelopes_py = atheris.instrument_func(framescan.envelopes_py)
    atheris.Setup(sys.argv, atheris.instrument_func(one_input))
    atheris.Fuzz()
