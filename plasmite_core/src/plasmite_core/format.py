"""On-disk layout of a pool file: header, state slots, index and frames.

Pure functions and constants only (no I/O), so the geometry and the
placement/wrap planning can be tested exhaustively. ``docs/format.md`` is the
byte-by-byte description; keep the two in step.

Positions in the ring are *logical*: they only grow, and the physical offset is
``pos % ring_size``. Live frames always occupy ``[tail_pos, head_pos)``, which is
never longer than the ring. Logical positions let a lock-free reader tell, after
copying bytes, whether a writer may have overwritten them (``pos < tail_pos``).
"""

from __future__ import annotations

import struct
import zlib
from .records import NamedTuple

MAGIC = b"PLSMPOOL"
FORMAT_VERSION = 1
HEADER_SIZE = 4096
ALIGN = 8

# Static header: written once at create, covered by its own CRC.
#   magic 8s | version I | header_size I | file_size Q | index_offset Q |
#   index_capacity Q | ring_offset Q | ring_size Q | created_ns Q | codec 16s | flags I
STATIC = struct.Struct("<8sIIQQQQQQ16sI")
STATIC_CRC_OFFSET = STATIC.size  # u32 CRC of the bytes before it
STATIC_CRC = struct.Struct("<I")

# Two state slots (double buffered): a crash while writing one leaves the other
# intact, so there is never a recovery scan.
#   gen Q | head_pos Q | tail_pos Q | newest_seq Q | oldest_seq Q | newest_time_ns Q | crc I | pad I
STATE_A_OFFSET = 128
STATE_B_OFFSET = 192
STATE_BODY = struct.Struct("<QQQQQQ")
STATE = struct.Struct("<QQQQQQII")
STATE_PAIR = struct.Struct("<QQQQQQII8xQQQQQQII")

# Follower wake-up: a futex word bumped on every publish, and the monotonic
# deadline (ns) until which some follower may be sleeping on it.
NOTIFY_COUNTER_OFFSET = 256
WAITER_DEADLINE_OFFSET = 264
# Lifecycle word: LIFE_DELETED once `delete` has unlinked the file, so that
# writers still holding it open refuse to append (zero while the pool lives).
LIFECYCLE_OFFSET = 272
LIFE_DELETED = int.from_bytes(b"DELETED!", "little")

# Repair record: seq ranges a repair dropped (damaged frames), so `info` can
# count what is really retained. Written only by repair, under the lock; all
# zeros (no record) in a pool never repaired, and ignored by older readers.
#   n I | crc I (CRC-32 of n and the ranges) | n x (first Q | last Q)
LOST_OFFSET = 512
LOST_HEAD = struct.Struct("<II")
LOST_RANGE = struct.Struct("<QQ")
LOST_MAX = (1024 - LOST_OFFSET - LOST_HEAD.size) // LOST_RANGE.size  # 31


def pack_lost(ranges: list[tuple[int, int]]) -> bytes:
    """The repair record for ``ranges`` (the newest LOST_MAX are kept)."""
    ranges = sorted(ranges)[-LOST_MAX:]
    body = b"".join(LOST_RANGE.pack(a, b) for a, b in ranges)
    n = struct.pack("<I", len(ranges))
    return n + struct.pack("<I", zlib.crc32(n + body)) + body


def parse_lost(buf: bytes | memoryview) -> list[tuple[int, int]]:
    """Seq ranges dropped by repairs ([] when none, or when the record fails its CRC)."""
    n, crc = LOST_HEAD.unpack_from(buf, LOST_OFFSET)
    if not n or n > LOST_MAX:
        return []
    start = LOST_OFFSET + LOST_HEAD.size
    body = bytes(buf[start : start + n * LOST_RANGE.size])
    if zlib.crc32(struct.pack("<I", n) + body) != crc:
        return []
    return [LOST_RANGE.unpack_from(body, i * LOST_RANGE.size) for i in range(n)]


def retained(st: "State", lost: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(count, oldest, newest) of the messages a state retains, net of the
    seqs repairs dropped; count 0 when none."""
    oldest, newest = st.oldest, st.newest
    for a, b in sorted(lost, reverse=True):
        if a <= newest <= b:
            newest = a - 1
    for a, b in sorted(lost):
        if a <= oldest <= b:
            oldest = b + 1
    if oldest > newest:
        return 0, oldest, newest
    count = newest - oldest + 1
    for a, b in lost:
        lo, hi = max(a, oldest), min(b, newest)
        if lo <= hi:
            count -= hi - lo + 1
    return count, oldest, newest


# Frame: len I | crc I | seq Q | time_ns Q | payload_len I | tags_len H | kind B | flags B
# then tags (JSON array text, empty meaning []), then payload, padded to 8 bytes.
FRAME_HEAD = struct.Struct("<IIQQIHBB")
FRAME_PREFIX = struct.Struct("<II")
FRAME_REST = struct.Struct("<QQIHBB")
FRAME_HEADER_SIZE = FRAME_HEAD.size  # 32
KIND_MESSAGE = 1
# A pad frame fills the end of the ring when the next frame does not fit there.
# Its crc field holds PAD_MARK (even); message CRCs are stored with bit 0 set,
# so the two can never be confused.
PAD_MARK = 0x50414400
MIN_FRAME = (FRAME_HEADER_SIZE + 1 + ALIGN - 1) & ~(ALIGN - 1)  # 40 bytes
MAX_TAGS_BYTES = 0xFFFF

INDEX_ENTRY = struct.Struct("<I")
INDEX_ENTRY_SIZE = INDEX_ENTRY.size

MIN_POOL_SIZE = 64 * 1024
MAX_POOL_SIZE = 1 << 40
MAX_RING_SIZE = (1 << 32) * ALIGN  # index entries hold (offset // 8) + 1 in a u32


def align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def frame_len(payload_len: int, tags_len: int) -> int:
    return (FRAME_HEADER_SIZE + tags_len + payload_len + ALIGN - 1) & ~(ALIGN - 1)


def frame_crc(body: bytes | memoryview) -> int:
    """CRC stored for a message frame (bit 0 forced on; see PAD_MARK)."""
    return zlib.crc32(body) | 1


def build_frame(seq: int, time_ns: int, tags: bytes, payload: bytes) -> bytes:
    """The full bytes of one message frame, padding excluded."""
    body = FRAME_REST.pack(seq, time_ns, len(payload), len(tags), KIND_MESSAGE, 0) + tags + payload
    return FRAME_PREFIX.pack(frame_len(len(payload), len(tags)), zlib.crc32(body) | 1) + body


class Geometry(NamedTuple):
    file_size: int
    index_offset: int
    index_capacity: int
    ring_offset: int
    ring_size: int


def plan_geometry(file_size: int, index_capacity: int | None = None) -> Geometry:
    """Split a pool file into header, index and ring.

    By default the index has one slot per smallest possible frame, so every
    retained message is indexed and get-by-seq never scans.
    """
    if file_size < MIN_POOL_SIZE:
        raise ValueError(f"pool size must be at least {MIN_POOL_SIZE} bytes")
    if file_size > MAX_POOL_SIZE:
        raise ValueError(f"pool size must be at most {MAX_POOL_SIZE} bytes")
    file_size = file_size & ~(ALIGN - 1)
    space = file_size - HEADER_SIZE
    if index_capacity is None:
        # ring + 4 * ring / MIN_FRAME = space
        ring = (space * MIN_FRAME) // (MIN_FRAME + INDEX_ENTRY_SIZE)
        ring &= ~(ALIGN - 1)
        index_capacity = ring // MIN_FRAME
    else:
        if index_capacity < 0:
            raise ValueError("index capacity must be >= 0")
        index_bytes = align(index_capacity * INDEX_ENTRY_SIZE)
        ring = space - index_bytes
        if ring < MIN_FRAME * 16:
            raise ValueError("index capacity leaves too little room for the ring")
        ring &= ~(ALIGN - 1)
    ring = min(ring, MAX_RING_SIZE)
    index_offset = HEADER_SIZE
    ring_offset = align(index_offset + index_capacity * INDEX_ENTRY_SIZE)
    ring = min(ring, file_size - ring_offset) & ~(ALIGN - 1)
    return Geometry(file_size, index_offset, index_capacity, ring_offset, ring)


def pack_static(geo: Geometry, codec: str, created_ns: int, version: int = FORMAT_VERSION) -> bytes:
    raw = STATIC.pack(
        MAGIC, version, HEADER_SIZE, geo.file_size, geo.index_offset, geo.index_capacity,
        geo.ring_offset, geo.ring_size, created_ns, codec.encode("ascii"), 0,
    )
    return raw + STATIC_CRC.pack(zlib.crc32(raw))


class StaticHeader(NamedTuple):
    version: int
    geometry: Geometry
    created_ns: int
    codec: str


class HeaderError(Exception):
    """Raised by parse_static; the caller maps it to Corrupt or Usage."""

    def __init__(self, message: str, *, newer: bool = False, offset: int = 0):
        super().__init__(message)
        self.newer = newer
        self.offset = offset


def parse_static(buf: bytes | memoryview, actual_size: int | None = None) -> StaticHeader:
    if len(buf) < STATIC.size + 4:
        raise HeaderError("file is too short to hold a pool header")
    fields = STATIC.unpack_from(buf, 0)
    magic, version = fields[0], fields[1]
    if magic != MAGIC:
        raise HeaderError("bad magic: not a plasmite pool file (or its header is damaged)")
    if version > FORMAT_VERSION:
        raise HeaderError(
            f"pool format version {version} is newer than this plasmite supports ({FORMAT_VERSION})",
            newer=True, offset=8,
        )
    (crc,) = STATIC_CRC.unpack_from(buf, STATIC_CRC_OFFSET)
    if zlib.crc32(bytes(buf[:STATIC_CRC_OFFSET])) != crc:
        raise HeaderError("header checksum mismatch", offset=STATIC_CRC_OFFSET)
    _, _, header_size, file_size, index_offset, index_capacity, ring_offset, ring_size, created, codec, _flags = fields
    geo = Geometry(file_size, index_offset, index_capacity, ring_offset, ring_size)
    if (
        header_size != HEADER_SIZE
        or index_offset != HEADER_SIZE
        or ring_offset < index_offset + index_capacity * INDEX_ENTRY_SIZE
        or ring_offset + ring_size > file_size
        or ring_size % ALIGN
        or ring_offset % ALIGN
        or ring_size < MIN_FRAME
    ):
        raise HeaderError("header geometry is inconsistent", offset=16)
    if actual_size is not None and actual_size != file_size:
        raise HeaderError(
            f"file is {actual_size} bytes but its header says {file_size} (truncated or extended)",
            offset=16,
        )
    return StaticHeader(version, geo, created, codec.rstrip(b"\0").decode("ascii", "replace"))


class State(NamedTuple):
    gen: int
    head: int
    tail: int
    newest: int  # 0 when nothing was ever appended
    oldest: int  # the pool is empty when oldest > newest
    newest_time: int

    @property
    def count(self) -> int:
        return max(0, self.newest - self.oldest + 1)


INITIAL_STATE = State(gen=1, head=0, tail=0, newest=0, oldest=1, newest_time=0)


def pack_state(st: State) -> bytes:
    body = STATE_BODY.pack(st.gen, st.head, st.tail, st.newest, st.oldest, st.newest_time)
    return body + struct.pack("<II", zlib.crc32(body), 0)


def choose_state(raw_pair: bytes | memoryview) -> State | None:
    """Pick the valid slot with the highest generation (None: both damaged)."""
    best = None
    for base in (0, 64):
        gen, head, tail, newest, oldest, ntime, crc, _ = STATE.unpack_from(raw_pair, base)
        if zlib.crc32(raw_pair[base : base + 48]) != crc:
            continue
        if best is None or gen > best.gen:
            best = State(gen, head, tail, newest, oldest, ntime)
    return best


class Placement(NamedTuple):
    """Where frames go: the pads to write, each frame's logical position, the
    new head, and ``need``, the position the tail must reach before anything
    is written (old frames below it are evicted)."""

    pads: list[tuple[int, int]]  # (logical pos, length)
    positions: list[int]
    head: int
    need: int


def plan_placement(head: int, ring_size: int, lengths: list[int] | tuple[int, ...]) -> Placement:
    """Place frames after ``head``, wrapping with a pad where a frame does not
    fit before the ring end; the one planner of single appends and batches.

    The live span after the write is ``[need, new head)``, never longer than
    the ring. Usually ``need <= head``: old frames from the tail up to ``need``
    are evicted. When even evicting every old frame is not enough (a frame
    that wraps after a pad and is nearly as large as the ring), every old frame
    goes, the span starts at the first new frame and the pad before it is not
    written: ``need`` is then that frame's position, past the old head.
    Raises ValueError when a frame is larger than the ring, or when the batch
    would have to evict its own frames.
    """
    pads: list[tuple[int, int]] = []
    positions: list[int] = []
    pos = head
    for n in lengths:
        if n > ring_size:
            raise ValueError("frame larger than the ring")
        room = ring_size - pos % ring_size
        if room < n:
            pads.append((pos, room))
            pos += room
        positions.append(pos)
        pos += n
    need = pos - ring_size
    if need > head:
        first = positions[0]
        if need > first:
            raise ValueError("batch larger than the ring")
        need = first
        pads = [p for p in pads if p[0] >= first]
    return Placement(pads, positions, pos, need)
