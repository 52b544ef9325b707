"""The raw floor: msgspec-encoded frames copied into an mmap under fcntl.flock.

Nothing else: no index, no checksum, no envelope beyond (length, seq, time).  It is
the least a Python writer can do per message, measured in the same run as
Plasmite so every Plasmite figure also reads as a fraction of what Python allows.

File layout: 64-byte header (u64 write offset, u64 next seq) then a ring of frames
``<u32 len><u64 seq><u64 time_ns><len bytes of JSON>``; a zero length marks a wrap.
The follower spins on the seq word (the floor may burn a core; Plasmite may not).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import time

import msgspec

NAME = "floor"
LABEL = "raw floor (mmap+flock)"

HDR = 64
FRAME = struct.Struct("<IQQ")
FH = FRAME.size
HEAD = struct.Struct("<QQ")
DEFAULT_SIZE = 64 << 20


def available() -> str | None:
    return None


def create(workdir: str, purpose: str, size: int = DEFAULT_SIZE) -> dict:
    path = os.path.join(workdir, f"floor-{purpose}.ring")
    with open(path, "wb") as f:
        f.truncate(size)
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), size)
        HEAD.pack_into(mm, 0, HDR, 1)
        mm.close()
    return {"path": path, "size": size}


def frame_bytes(payload_len: int) -> int:
    return FH + payload_len


class Handle:
    def __init__(self, spec: dict):
        self.path = spec["path"]
        self.size = spec["size"]
        self.fd = os.open(self.path, os.O_RDWR)
        self.mm = mmap.mmap(self.fd, self.size)
        self._enc = msgspec.json.Encoder()
        self._dec = msgspec.json.Decoder()
        self._pos = HDR
        self._seq = 1

    # -- writes -------------------------------------------------------------
    def append(self, obj) -> None:
        buf = self._enc.encode(obj)
        n = len(buf)
        mm = self.mm
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        off, seq = HEAD.unpack_from(mm, 0)
        end = off + FH + n
        if end > self.size:
            FRAME.pack_into(mm, off, 0, 0, 0)
            off = HDR
            end = off + FH + n
        FRAME.pack_into(mm, off, n, seq, time.time_ns())
        mm[off + FH : end] = buf
        HEAD.pack_into(mm, 0, end, seq + 1)
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def append_many(self, objs) -> None:
        enc = self._enc.encode
        bufs = [enc(o) for o in objs]
        mm = self.mm
        size = self.size
        pack = FRAME.pack_into
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        off, seq = HEAD.unpack_from(mm, 0)
        now = time.time_ns()
        for buf in bufs:
            n = len(buf)
            end = off + FH + n
            if end > size:
                pack(mm, off, 0, 0, 0)
                off = HDR
                end = off + FH + n
            pack(mm, off, n, seq, now)
            mm[off + FH : end] = buf
            off = end
            seq += 1
        HEAD.pack_into(mm, 0, off, seq)
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    fill = append_many

    # -- reads --------------------------------------------------------------
    def _frames(self, n: int):
        """Yield (seq, memoryview payload) from the start of the file (no wrap)."""
        mm = self.mm
        view = memoryview(mm)
        head, _ = HEAD.unpack_from(mm, 0)
        off = HDR
        unpack = FRAME.unpack_from
        k = 0
        while off < head and k < n:
            ln, seq, _t = unpack(mm, off)
            if ln == 0:
                break
            yield seq, view[off + FH : off + FH + ln]
            off += FH + ln
            k += 1

    def read(self, n: int) -> int:
        dec = self._dec.decode
        k = 0
        for _seq, buf in self._frames(n):
            dec(buf)
            k += 1
        return k

    def read_raw(self, n: int) -> int:
        k = 0
        for _seq, buf in self._frames(n):
            bytes(buf)
            k += 1
        return k

    def read_raw_batch(self, n: int) -> int:
        return self.read_raw(n)  # the floor's raw read is already one tight loop

    def all_items(self) -> list:
        dec = self._dec.decode
        return [dec(buf) for _s, buf in self._frames(1 << 62)]

    def keys(self, n: int):
        return None  # the floor has no index: get-by-seq is not part of it

    def footprint(self) -> int:
        return self.size

    # -- follow (spinning) --------------------------------------------------
    def follow_start(self) -> None:
        self._pos, self._seq = HEAD.unpack_from(self.mm, 0)

    def follow_next(self, timeout_s: float):
        mm = self.mm
        unpack_head = HEAD.unpack_from
        deadline = time.monotonic() + timeout_s
        spins = 0
        while unpack_head(mm, 0)[1] == self._seq:
            spins += 1
            if spins & 0xFFFF == 0 and time.monotonic() > deadline:
                return None
        ln, seq, _t = FRAME.unpack_from(mm, self._pos)
        if ln == 0:
            self._pos = HDR
            ln, seq, _t = FRAME.unpack_from(mm, self._pos)
        obj = self._dec.decode(mm[self._pos + FH : self._pos + FH + ln])
        self._pos += FH + ln
        self._seq = seq + 1
        return obj

    def close(self) -> None:
        try:
            self.mm.close()
        except BufferError:
            pass
        os.close(self.fd)
