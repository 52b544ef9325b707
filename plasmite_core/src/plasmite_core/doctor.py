"""Pool health checks and repair (``pls doctor``).

``check_pool`` validates everything a reader relies on: the static header, both
state slots, every live frame from tail to head (length, CRC, seq continuity,
monotonic time), pads, and the index entries of retained messages. It never
changes the file. ``repair_pool`` (under the writer lock) keeps the longest
whole, checksummed frames from the oldest up to the first damaged one, and
rewrites the state and the index to describe exactly that. Seqs are never
reused: the next append continues after the newest seq ever published, so
followers see the dropped messages as a retention gap.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import format as F
from . import locks
from .errors import CorruptError, PlasmiteError
from .pool import PoolFile


@dataclass
class Issue:
    code: str
    message: str
    offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.offset is not None:
            d["offset"] = self.offset
        return d


@dataclass
class Report:
    path: str
    ok: bool = True
    issues: list[Issue] = field(default_factory=list)
    messages_checked: int = 0
    oldest_seq: int | None = None
    newest_seq: int | None = None
    repaired: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, code: str, message: str, offset: int | None = None) -> None:
        self.ok = False
        self.issues.append(Issue(code, message, offset))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "issues": [i.to_dict() for i in self.issues],
            "messages_checked": self.messages_checked,
            "bounds": {"oldest": self.oldest_seq, "newest": self.newest_seq},
            "repaired": self.repaired,
            "notes": self.notes,
        }


def _walk(pf: PoolFile, st: F.State, report: Report | None) -> list[tuple[int, int, int]]:
    """Whole, valid frames from tail to head as (pos, seq, time); stops at the first bad one."""
    mm = pf.mm
    R = pf.ring_size
    ro = pf.ring_offset
    pos = st.tail
    expect = st.oldest
    last_t = 0
    good: list[tuple[int, int, int]] = []
    while pos < st.head:
        phys = pos % R
        if R - phys < 8:
            report and report.add("frame_bounds", "frame crosses the end of the ring", ro + phys)
            break
        flen, crc = struct.unpack_from("<II", mm, ro + phys)
        if crc == F.PAD_MARK:
            if flen != R - phys:
                report and report.add("bad_pad", f"pad of {flen} bytes does not reach the ring end", ro + phys)
                break
            pos += flen
            continue
        if flen < F.MIN_FRAME or flen & 7 or phys + flen > R:
            report and report.add("frame_length", f"frame length {flen} is out of range", ro + phys)
            break
        _, _, seq, t, pl, tl, kind, _ = F.FRAME_HEAD.unpack_from(mm, ro + phys)
        end = 32 + tl + pl
        if (end + 7) & ~7 != flen or kind != F.KIND_MESSAGE:
            report and report.add("frame_fields", f"frame length {flen} does not match its fields ({end} bytes)", ro + phys)
            break
        if (zlib.crc32(mm[ro + phys + 8 : ro + phys + end]) | 1) != crc:
            report and report.add("checksum", f"frame seq {seq} fails its checksum", ro + phys)
            break
        if seq < expect:
            report and report.add("seq_order", f"found seq {seq} where seq {expect} was expected", ro + phys)
            break
        if seq > expect and report is not None:
            report.notes.append(f"seqs {expect}..{seq - 1} are missing (dropped by an earlier repair)")
        if t < last_t:
            report and report.add("time_order", f"seq {seq} is older than the message before it", ro + phys)
        last_t = t
        good.append((pos, seq, t))
        expect = seq + 1
        pos += flen
    return good


def check_pool(path: str | os.PathLike) -> Report:
    """Validate a pool file without changing it."""
    path = Path(path)
    report = Report(str(path))
    try:
        pf = PoolFile.open(path)
    except CorruptError as exc:
        report.add("header", exc.message, exc.offset)
        return report
    except PlasmiteError:
        raise
    try:
        _check_open(pf, report)
    finally:
        pf.close()
    return report


def _check_open(pf: PoolFile, report: Report) -> None:
    mm = pf.mm
    for name, off in (("A", F.STATE_A_OFFSET), ("B", F.STATE_B_OFFSET)):
        body = mm[off : off + 48]
        (crc,) = struct.unpack_from("<I", mm, off + 48)
        # A slot never written is all zeros; anything else must hold its CRC
        # (a damaged generation word of 0 does not make a slot "unused").
        if any(mm[off : off + 52]) and zlib.crc32(body) != crc:
            report.add("state_slot", f"state slot {name} fails its checksum (the other slot is used)", off)
    st = pf.read_state()
    R = pf.ring_size
    if not (st.tail <= st.head and st.head - st.tail <= R and st.oldest <= st.newest + 1 and max(st) < 1 << 62):
        report.add("state", f"state is inconsistent: tail {st.tail}, head {st.head}, seqs {st.oldest}..{st.newest}", F.STATE_A_OFFSET)
        return
    good = _walk(pf, st, report)
    report.messages_checked = len(good)
    if good:
        report.oldest_seq, report.newest_seq = good[0][1], good[-1][1]
    icap = pf.index_capacity
    if icap and report.ok:
        R = pf.ring_size
        window = good[-icap:]
        for pos, seq, _ in window:
            (v,) = F.INDEX_ENTRY.unpack_from(mm, pf.index_offset + (seq % icap) * 4)
            if v != ((pos % R) >> 3) + 1:
                report.add("index", f"index slot for seq {seq} points elsewhere", pf.index_offset + (seq % icap) * 4)
                break


def repair_pool(path: str | os.PathLike, lock_timeout: float | None = None) -> Report:
    """Repair in place under the directory's admin lock and the pool's write
    lock (each waited for within ``lock_timeout``, then Busy): keep whole
    frames, rebuild state and index."""
    path = Path(path)
    timeout = locks.resolve_timeout(lock_timeout)
    with locks.admin_lock(path.parent, timeout):
        return _repair(path, timeout)


def _repair(path: Path, timeout: float) -> Report:
    before = check_pool(path)
    if before.ok:
        return before
    if any(i.code == "header" for i in before.issues):
        raise CorruptError(
            f"cannot repair {path}: its header is damaged", str(path), offset=0,
            hint="restore the pool from a backup, or delete and recreate it",
        )
    pf = PoolFile.open(path, timeout)
    try:
        pf.lock()
        try:
            st = pf.read_state()
            R = pf.ring_size
            if max(st) >= 1 << 62:
                # Only a forged (CRC-valid) slot gets here; no count is that large.
                raise CorruptError(
                    f"cannot repair {path}: its state holds out-of-range values", str(path), offset=F.STATE_A_OFFSET,
                    hint="restore the pool from a backup, or delete and recreate it",
                )
            if not (st.tail <= st.head and st.head - st.tail <= R):
                st = F.State(st.gen, st.head, max(st.tail, st.head - R), st.newest, st.oldest, st.newest_time)
            good = _walk(pf, st, None)
            if good:
                last_pos, last_seq, last_t = good[-1]
                (flen,) = struct.unpack_from("<I", pf.mm, pf.ring_offset + last_pos % R)
                head = last_pos + flen
                new = F.State(st.gen + 2, head, good[0][0], max(last_seq, st.newest), good[0][1], last_t)
            else:
                new = F.State(st.gen + 2, st.tail, st.tail, st.newest, st.newest + 1, st.newest_time)
            pf._publish(new.gen, new.head, new.tail, new.newest, new.oldest, new.newest_time)
            pf._publish(new.gen + 1, new.head, new.tail, new.newest, new.oldest, new.newest_time)
            icap = pf.index_capacity
            if icap:
                for pos, seq, _ in good[-icap:]:
                    F.INDEX_ENTRY.pack_into(pf.mm, pf.index_offset + (seq % icap) * 4, ((pos % R) >> 3) + 1)
            pf.mm.flush()
        finally:
            pf.unlock()
    finally:
        pf.close()
    after = check_pool(path)
    after.repaired = True
    after.issues = before.issues + after.issues
    after.ok = len(after.issues) == len(before.issues)
    return after
