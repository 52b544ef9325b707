"""The per-message loops of ring reads: parsing one chunk of frames (length,
pad and CRC checks, slicing) and assembling JSON envelopes.

These functions are the reference implementation. When the optional
``plasmite-speedups`` distribution was built with its C extension, the
compiled twins in ``plasmite_speedups._frames`` (same signatures, same results,
checked by tests/core/test_core_speedups.py) are used instead; ``PLASMITE_PURE=1``
forces the Python ones. ``COMPILED`` says which are in use.
"""

from __future__ import annotations

import struct
import zlib

from .rfc3339 import second_bytes
from .speedups import compiled

# scan_chunk stops with one of these statuses, ``off`` at the frame concerned.
END, PAD, BIG, BADLEN, BADCRC = range(5)

_HEAD = struct.Struct("<IIQQIHBB")
_CRC_PAD = struct.Struct("<II")
_PAD_MARK = 0x50414400
_MIN_FRAME = 40
_ENVELOPE = b'{"seq":%d,"time":"%s.%09dZ","meta":{"tags":%s},"data":%s}'


def scan_chunk_py(buf: bytes, phys: int, ring_size: int, limit: int, out: list) -> tuple[int, int]:
    """Append ``(seq, time_ns, tags, payload)`` of the whole, valid message
    frames at the start of ``buf`` (ring bytes from physical offset ``phys``)
    to ``out`` until it holds ``limit``; returns ``(off, status)``: END when
    fewer than 8 bytes are left at ``off``, PAD for a pad frame at ``off``, BIG
    for a frame that crosses the end of ``buf``, BADLEN or BADCRC for a damaged
    frame at ``off`` (the caller reports it)."""
    n = len(buf)
    mv = memoryview(buf)
    unpack = _HEAD.unpack_from
    crc32 = zlib.crc32
    append = out.append
    off = 0
    while off + 8 <= n:
        if len(out) >= limit:
            break
        if off + 32 <= n:
            flen, crc, seq, t, pl, tl, _, _ = unpack(buf, off)
        else:
            flen, crc = _CRC_PAD.unpack_from(buf, off)
            seq = t = pl = tl = 0
        if crc == _PAD_MARK:
            return off, PAD
        if flen < _MIN_FRAME or flen & 7 or phys + off + flen > ring_size:
            return off, BADLEN
        if off + flen > n:
            return off, BIG
        start = off + 32
        end = start + tl + pl
        # The CRC does not cover len: it must be exactly the aligned size of
        # the covered fields, or a damaged len would skip frames.
        if ((39 + tl + pl) & ~7) != flen or (crc32(mv[off + 8 : end]) | 1) != crc:
            return off, BADCRC
        if tl:
            append((seq, t, buf[start : start + tl], buf[start + tl : end]))
        else:
            append((seq, t, b"", buf[start:end]))
        off += flen
    return off, END


def envelopes_py(frames: list) -> list[bytes]:
    """The JSON envelope of each ``(seq, time_ns, tags, payload)`` frame of a
    JSON pool (the bytes of ``Message.raw``)."""
    if not frames:
        return []
    env = _ENVELOPE
    sec = frames[0][1] // 1_000_000_000
    if frames[-1][1] // 1_000_000_000 == sec and all(f[1] // 1_000_000_000 == sec for f in frames):
        # One second for the whole batch (the usual case): format its text once.
        stamp = second_bytes(sec)
        base = sec * 1_000_000_000
        return [env % (seq, stamp, t - base, tags_raw or b"[]", payload) for seq, t, tags_raw, payload in frames]
    out = []
    for seq, t, tags_raw, payload in frames:
        sec, frac = divmod(t, 1_000_000_000)
        out.append(env % (seq, second_bytes(sec), frac, tags_raw or b"[]", payload))
    return out


_c = compiled("_frames")
COMPILED = _c is not None
scan_chunk = _c.scan_chunk if _c is not None else scan_chunk_py
envelopes = _c.envelopes if _c is not None else envelopes_py
