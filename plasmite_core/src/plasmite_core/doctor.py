"""Pool health checks and repair (``pls doctor``).

``check_pool`` validates everything a reader relies on: the static header, both
state slots, every live frame from tail to head (length, CRC, seq continuity,
monotonic time), pads, and the index entries of retained messages. It never
changes the file; with ``deep`` it also decodes every payload and tags blob,
which finds frames forged with a valid CRC. Past a damaged frame the walk
resynchronises at the next position where a frame verifies.

``repair_pool`` (under the writer lock) keeps every frame that verifies,
covers the damaged spans between them with pad frames (which readers skip),
records the lost seq ranges in the header's repair record (so ``info`` counts
what is really retained), and rewrites the state and the index. Seqs are never
reused: the next append continues after the newest seq ever published, so
followers see the lost messages as a gap.
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
    seq: int | None = None  # the message concerned, when its frame is intact enough to name it

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.offset is not None:
            d["offset"] = self.offset
        if self.seq is not None:
            d["seq"] = self.seq
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
    lost: list[list[int]] = field(default_factory=list)  # [first, last] seq ranges a repair dropped

    def add(self, code: str, message: str, offset: int | None = None, seq: int | None = None) -> None:
        self.ok = False
        self.issues.append(Issue(code, message, offset, seq))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "issues": [i.to_dict() for i in self.issues],
            "messages_checked": self.messages_checked,
            "bounds": {"oldest": self.oldest_seq, "newest": self.newest_seq},
            "repaired": self.repaired,
            "lost": self.lost,
            "notes": self.notes,
        }


def _inspect(pf: PoolFile, pos: int, head: int, last_seq: int, newest: int) -> tuple:
    """What lies at logical ``pos``: ("pad", len), ("msg", len, seq, time,
    tags_len, payload_len) for a whole checksummed frame that fits before
    ``head`` and whose seq follows ``last_seq``, or ("bad", code, message)."""
    mm = pf.mm
    R = pf.ring_size
    ro = pf.ring_offset
    phys = pos % R
    if R - phys < 8:
        return ("bad", "frame_bounds", "frame crosses the end of the ring")
    flen, crc = struct.unpack_from("<II", mm, ro + phys)
    if crc == F.PAD_MARK:
        # the ring-end pad, or one a repair wrote over dropped frames
        if flen < 8 or flen & 7 or phys + flen > R or pos + flen > head:
            return ("bad", "bad_pad", f"pad of {flen} bytes is out of range")
        return ("pad", flen)
    if flen < F.MIN_FRAME or flen & 7 or phys + flen > R or pos + flen > head:
        return ("bad", "frame_length", f"frame length {flen} is out of range")
    _, _, seq, t, pl, tl, kind, _ = F.FRAME_HEAD.unpack_from(mm, ro + phys)
    end = 32 + tl + pl
    if (end + 7) & ~7 != flen or kind != F.KIND_MESSAGE:
        return ("bad", "frame_fields", f"frame length {flen} does not match its fields ({end} bytes)")
    if (zlib.crc32(mm[ro + phys + 8 : ro + phys + end]) | 1) != crc:
        return ("bad", "checksum", f"frame seq {seq} fails its checksum")
    if seq <= last_seq or seq > newest:
        return ("bad", "seq_order", f"found seq {seq} after seq {last_seq} (newest published: {newest})")
    return ("msg", flen, seq, t, tl, pl)


def _resync(pf: PoolFile, pos: int, head: int, last_seq: int, newest: int) -> int | None:
    """The next position after damage where a whole frame (or the ring-end
    pad) verifies: frames start 8-aligned, so try each such position."""
    while pos < head:
        if _inspect(pf, pos, head, last_seq, newest)[0] != "bad":
            return pos
        pos += 8
    return None


def _payload_checker(pf: PoolFile):
    """``check(tags, payload) -> problem or None``: decode as readers do."""
    import msgspec

    if pf.codec_name == "json":
        decode = msgspec.json.Decoder().decode
    else:
        from . import plugins

        decode = plugins.codec(pf.codec_name).decode
    tags_decode = msgspec.json.Decoder(list[str]).decode

    def check(tags: bytes, payload: bytes) -> tuple[str, str] | None:
        try:
            if tags:
                tags_decode(tags)
        except Exception as exc:
            return "tags", f"tags are not a JSON array of strings ({exc})"
        try:
            decode(payload)
        except Exception as exc:
            return "payload", f"payload is not valid {pf.codec_name} ({exc})"
        return None

    return check


def _walk(pf: PoolFile, st: F.State, report: Report | None, deep: bool = False, regions: list | None = None) -> list[tuple[int, int, int]]:
    """Whole, valid frames from tail to head as (pos, seq, time). A damaged
    frame is reported and skipped: the walk resynchronises at the next
    position where a frame verifies, so every intact frame is found
    (``regions`` receives the skipped spans as [start, end) positions). With
    ``deep``, payloads and tags must also decode with the pool's codec."""
    mm = pf.mm
    R = pf.ring_size
    ro = pf.ring_offset
    check = _payload_checker(pf) if deep else None
    pos = st.tail
    last_seq = st.oldest - 1
    last_t = 0
    damaged = False
    good: list[tuple[int, int, int]] = []
    while pos < st.head:
        what = _inspect(pf, pos, st.head, last_seq, st.newest)
        if what[0] == "pad":
            # Writers pad only to the ring end; a repair pads over dropped
            # frames, always up to a frame it kept. Anything else is damage
            # (e.g. a shortened ring-end pad landing on stale bytes).
            if (pos % R) + what[1] == R or _inspect(pf, pos + what[1], st.head, last_seq, st.newest)[0] == "msg":
                pos += what[1]
                continue
            what = ("bad", "bad_pad", f"pad of {what[1]} bytes inside the ring is not followed by a message")
        if what[0] == "bad":
            report and report.add(what[1], what[2], ro + pos % R)
            damaged = True
            nxt = _resync(pf, pos + 8, st.head, last_seq, st.newest)
            if regions is not None:
                regions.append((pos, st.head if nxt is None else nxt))
            if nxt is None:
                break
            pos = nxt
            continue
        _, flen, seq, t, tl, pl = what
        if check is not None:
            start = ro + pos % R + 32
            problem = check(mm[start : start + tl], mm[start + tl : start + tl + pl])
            if problem:
                report and report.add(problem[0], f"seq {seq}: {problem[1]}", ro + pos % R, seq)
                if regions is not None:
                    regions.append((pos, pos + flen))
                damaged = True
                last_seq = seq
                pos += flen
                continue
        if seq > last_seq + 1 and report is not None and good:
            why = "lost to damaged frames" if damaged else "dropped by a repair"
            report.notes.append(f"seqs {last_seq + 1}..{seq - 1} are missing ({why})")
        if t < last_t:
            report and report.add("time_order", f"seq {seq} is older than the message before it", ro + pos % R, seq)
        last_t = t
        good.append((pos, seq, t))
        last_seq = seq
        damaged = False
        pos += flen
    return good


def check_pool(path: str | os.PathLike, deep: bool = False) -> Report:
    """Validate a pool file without changing it; ``deep`` also decodes every
    retained payload and tags blob (finds frames forged with a valid CRC)."""
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
        _check_open(pf, report, deep)
    finally:
        pf.close()
    return report


def _check_open(pf: PoolFile, report: Report, deep: bool) -> None:
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
    good = _walk(pf, st, report, deep)
    report.messages_checked = len(good)
    if good:
        report.oldest_seq, report.newest_seq = good[0][1], good[-1][1]
    icap = pf.index_capacity
    if icap and report.ok:
        R = pf.ring_size
        # the slots of the newest icap seqs (a repaired pool may have holes)
        window = [g for g in good[-icap:] if g[1] > good[-1][1] - icap]
        for pos, seq, _ in window:
            (v,) = F.INDEX_ENTRY.unpack_from(mm, pf.index_offset + (seq % icap) * 4)
            if v != ((pos % R) >> 3) + 1:
                report.add("index", f"index slot for seq {seq} points elsewhere", pf.index_offset + (seq % icap) * 4, seq)
                break


def _lost_ranges(good: list, first: int, newest: int) -> list[tuple[int, int]]:
    """Seqs in ``first..newest`` that ``good`` (ascending) does not hold."""
    out = []
    expect = first
    for _, seq, _ in good:
        if seq > expect:
            out.append((expect, seq - 1))
        expect = seq + 1
    if expect <= newest:
        out.append((expect, newest))
    return out


def repair_pool(path: str | os.PathLike, lock_timeout: float | None = None, *, deep: bool = False) -> Report:
    """Repair in place under the directory's admin lock and the pool's write
    lock (each waited for within ``lock_timeout``, then Busy): keep every
    frame that verifies (with ``deep``: and decodes), cover the damaged spans
    between them with pad frames, record the lost seqs, and rebuild the state
    and the index.

    Seqs are never reused: the next append continues after the newest seq
    ever published, so followers see the lost messages as a gap.
    """
    path = Path(path)
    timeout = locks.resolve_timeout(lock_timeout)
    with locks.admin_lock(path.parent, timeout):
        return _repair(path, timeout, deep)


def _repair(path: Path, timeout: float, deep: bool) -> Report:
    before = check_pool(path, deep)
    if before.ok:
        return before
    if any(i.code == "header" for i in before.issues):
        raise CorruptError(
            f"cannot repair {path}: its header is damaged", str(path), offset=0,
            hint="restore the pool from a backup, or delete and recreate it",
        )
    pf = PoolFile.open(path, timeout)
    lost: list[tuple[int, int]] = []
    try:
        pf.lock()
        try:
            st = pf.read_state()
            R = pf.ring_size
            ro = pf.ring_offset
            mm = pf.mm
            if max(st) >= 1 << 62:
                # Only a forged (CRC-valid) slot gets here; no count is that large.
                raise CorruptError(
                    f"cannot repair {path}: its state holds out-of-range values", str(path), offset=F.STATE_A_OFFSET,
                    hint="restore the pool from a backup, or delete and recreate it",
                )
            if not (st.tail <= st.head and st.head - st.tail <= R):
                st = F.State(st.gen, st.head, max(st.tail, st.head - R), st.newest, st.oldest, st.newest_time)
            regions: list[tuple[int, int]] = []
            good = _walk(pf, st, None, deep, regions)
            if good:
                last_pos, last_seq, last_t = good[-1]
                (flen,) = struct.unpack_from("<I", mm, ro + last_pos % R)
                head = last_pos + flen
                new = F.State(st.gen + 2, head, good[0][0], max(last_seq, st.newest), good[0][1], last_t)
                lost = _lost_ranges(good, min(st.oldest, good[0][1]), new.newest)
            else:
                new = F.State(st.gen + 2, st.tail, st.tail, st.newest, st.newest + 1, st.newest_time)
                if st.oldest <= st.newest:
                    lost = [(st.oldest, st.newest)]
            # Record the lost seqs (with earlier repairs' that are still in
            # range) before the state that leaves them out is published.
            keep = [(a, b) for a, b in pf.lost() if b >= new.oldest]
            record = F.pack_lost(keep + lost)
            mm[F.LOST_OFFSET : F.LOST_OFFSET + len(record)] = record
            # Damaged spans between kept frames become pads, which readers skip
            # (a pad never crosses the ring end: split it there).
            for start, end in regions:
                if start < new.tail or end > new.head:
                    continue
                nxt = _inspect(pf, end, new.head, 0, 1 << 63)
                if nxt[0] == "pad":
                    end += nxt[1]  # one pad up to the ring end, not two in a row
                while start < end:
                    n = min(end - start, R - start % R)
                    F.FRAME_PREFIX.pack_into(mm, ro + start % R, n, F.PAD_MARK)
                    start += n
            pf._publish(new.gen, new.head, new.tail, new.newest, new.oldest, new.newest_time)
            pf._publish(new.gen + 1, new.head, new.tail, new.newest, new.oldest, new.newest_time)
            icap = pf.index_capacity
            if icap:
                for a, b in lost:
                    for seq in range(max(a, b - icap + 1), b + 1):
                        F.INDEX_ENTRY.pack_into(mm, pf.index_offset + (seq % icap) * 4, 0)
                for pos, seq, _ in [g for g in good[-icap:] if g[1] > good[-1][1] - icap]:
                    F.INDEX_ENTRY.pack_into(mm, pf.index_offset + (seq % icap) * 4, ((pos % R) >> 3) + 1)
            mm.flush()
        finally:
            pf.unlock()
    finally:
        pf.close()
    after = check_pool(path, deep)
    after.repaired = True
    after.lost = [list(r) for r in lost]
    after.issues = before.issues + after.issues
    after.ok = len(after.issues) == len(before.issues)
    return after
