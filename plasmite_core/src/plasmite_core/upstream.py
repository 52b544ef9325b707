"""Pool files of upstream Plasmite (the Rust engine): recognise and import them.

Upstream keeps pools under the same names (``~/.plasmite/pools/NAME.plasmite``)
in its own format: magic ``PLSM`` then a u32 format version (3 today), where
this project's files start ``PLSMPOOL``. Opening one here is a Usage error
that names it and points at ``pls pool import``, which converts it, keeping
every retained message's seq, time, tags and data.

Upstream's format 3, as its engine writes it (all integers little-endian):

- header, 4096 bytes: ``PLSM`` @0, version u32 @4, endianness u8 @8 (1),
  file_size u64 @16, index_offset u64 @24 (4096), index_capacity u32 @32,
  ring_offset u64 @40, ring_size u64 @48, flags u64 @56, head_off u64 @64,
  tail_off u64 @72, tail_next_off u64 @80, oldest_seq u64 @88 (0: empty),
  newest_seq u64 @96;
- index: index_capacity slots of 16 bytes (seq u64, ring offset u64);
- ring: frames at 8-aligned ring offsets. A frame is a 64-byte header
  (``FRM1`` @0, state u32 @4 with 2 committed and 3 a wrap marker, flags u32
  @8, header_len u32 @12 (64), seq u64 @16, timestamp_ns u64 @24,
  payload_len u32 @32, its bitwise complement u32 @36, crc u32 @40), the
  payload, the commit marker ``PLSMCMIT``, padded to 8 bytes. The payload is
  the Lite3 document of ``{"meta":{"tags":[...]},"data":{...}}``.

Readers start at ``tail_off`` and follow frames (a wrap marker, or less room
than a frame header before the ring's end, continues at offset 0) until
``newest_seq``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

from .errors import CorruptError, UsageError

if TYPE_CHECKING:
    import mmap

MAGIC = b"PLSM"
OWN_MAGIC_TAIL = b"POOL"  # this project's magic is PLSMPOOL
SUPPORTED_VERSION = 3
HEADER_SIZE = 4096
FRAME_HEADER_SIZE = 64
FRAME_MAGIC = b"FRM1"
COMMIT_MARKER = b"PLSMCMIT"
STATE_COMMITTED = 2
STATE_WRAP = 3

_HEAD = struct.Struct("<4sIB7xQQI4xQQQQQQQQ")  # through newest_seq @96
_FRAME = struct.Struct("<4sIIIQQII")  # through payload_len_xor @36


class UpstreamHeader(NamedTuple):
    version: int
    file_size: int
    index_capacity: int
    ring_offset: int
    ring_size: int
    head_off: int
    tail_off: int
    oldest_seq: int  # 0 when empty
    newest_seq: int


def upstream_version(path: str | os.PathLike) -> int | None:
    """The format version when ``path`` is an upstream pool file, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if len(head) < 8 or head[:4] != MAGIC or head[4:] == OWN_MAGIC_TAIL:
        return None
    version = struct.unpack_from("<I", head, 4)[0]
    # A plausible version only: a damaged "POOL" in this project's magic is
    # a corrupt pool of ours, not a foreign one.
    return version if 1 <= version <= 255 else None


def not_ours_error(path: str | os.PathLike, version: int, ref: str | None = None) -> UsageError:
    """The Usage error for opening an upstream pool file as one of ours."""
    ref = ref or str(path)
    return UsageError(
        f"{path} is an upstream Plasmite pool (format {version}), not a pool of this implementation",
        str(path),
        hint=f"convert it with `pls pool import {ref}` (keeps seqs, times, tags and data; "
             "the original is kept as a .bak file)",
    )


def read_header(buf: bytes, path: str, actual_size: int) -> UpstreamHeader:
    if len(buf) < _HEAD.size:
        raise CorruptError(f"upstream pool {path} is too short for its header", path, offset=0)
    (magic, version, endian, file_size, index_offset, icap, ring_offset, ring_size, _flags,
     head, tail, _tail_next, oldest, newest) = _HEAD.unpack_from(buf, 0)
    if version != SUPPORTED_VERSION:
        raise UsageError(
            f"{path} is an upstream Plasmite pool in format {version}; import reads format {SUPPORTED_VERSION}",
            path, hint="open it with the upstream release that wrote it and export its messages "
                       "(`plasmite follow NAME --tail N --jsonl`), then `pls feed` them",
        )
    if (endian != 1 or file_size != actual_size or index_offset != HEADER_SIZE
            or ring_offset != HEADER_SIZE + 16 * icap or ring_offset + ring_size != file_size or ring_size == 0
            or head >= ring_size or tail >= ring_size or head % 8 or tail % 8
            or (oldest and oldest > newest)):
        raise CorruptError(f"upstream pool {path} has an inconsistent header", path, offset=16,
                           hint="check it with upstream's `plasmite doctor`")
    return UpstreamHeader(version, file_size, icap, ring_offset, ring_size, head, tail, oldest, newest)


def iter_frames(data: bytes | memoryview | mmap.mmap, h: UpstreamHeader, path: str) -> Iterator[tuple[int, int, bytes]]:
    """``(seq, timestamp_ns, lite3_payload)`` of every retained message, oldest first."""
    if not h.oldest_seq:
        return
    ring, R = h.ring_offset, h.ring_size
    off = h.tail_off
    expect = h.oldest_seq
    wraps = 0
    while expect <= h.newest_seq:
        if R - off < FRAME_HEADER_SIZE:
            off, wraps = 0, wraps + 1
        if wraps > 2:
            raise CorruptError(f"upstream pool {path}: frames do not lead to seq {expect}", path, seq=expect)
        at = ring + off
        magic, state, _flags, hlen, seq, t, plen, plen_x = _FRAME.unpack_from(data, at)
        if magic != FRAME_MAGIC:
            raise CorruptError(f"upstream pool {path}: no frame at ring offset {off} (seq {expect})", path,
                               seq=expect, offset=at)
        if state == STATE_WRAP:
            off, wraps = 0, wraps + 1
            continue
        total = (hlen + plen + len(COMMIT_MARKER) + 7) & ~7
        end = at + hlen + plen
        if (state != STATE_COMMITTED or hlen != FRAME_HEADER_SIZE or plen ^ plen_x != 0xFFFFFFFF
                or off + total > R or bytes(data[end:end + 8]) != COMMIT_MARKER or seq != expect):
            raise CorruptError(f"upstream pool {path}: damaged frame at ring offset {off} (seq {expect})", path,
                               seq=expect, offset=at)
        yield seq, t, bytes(data[at + hlen:end])
        expect += 1
        off += total
        if off == R:
            off = 0


class ImportReport(NamedTuple):
    source: str
    path: str
    messages: int
    first_seq: int | None
    last_seq: int | None
    dropped_oldest: int  # messages that did not fit the new pool's ring
    backup: str | None  # where the original went when converting in place


def import_pool(source: Path, dest: Path, size: int | None = None, index_capacity: int | None = None,
                source_ref: str | None = None) -> ImportReport:
    """Convert the upstream pool file ``source`` into a pool of this project at
    ``dest`` (the same path converts in place, keeping the original as
    ``NAME.plasmite.upstream-v3.bak``). Nothing is written at ``dest`` unless
    the new file passed ``doctor``'s checks."""
    import errno
    import mmap

    import msgspec

    from . import format as F
    from .errors import AlreadyExistsError, InternalError, from_os_error
    from .lite3_frames import message_from_lite3

    src = str(source)
    version = upstream_version(source)
    if version is None:
        if not Path(source).exists():
            from .errors import NotFoundError

            raise NotFoundError(f"not found: {src}", src, hint="give the path or name of the upstream pool file")
        raise UsageError(f"{src} is not an upstream Plasmite pool file (no PLSM magic)", src,
                         hint="pool import converts pools written by upstream Plasmite (format 3)")
    try:
        with open(source, "rb") as fh:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                h = read_header(mm[:HEADER_SIZE], src, len(mm))
                frames = list(iter_frames(mm, h, src))
    except OSError as exc:
        raise from_os_error(exc, src, action="read") from None

    enc = msgspec.json.encode
    built = []
    for seq, t, payload in frames:
        try:
            data, tags = message_from_lite3(payload)
        except UsageError as exc:
            raise CorruptError(f"upstream pool {src}: message {seq} is not a valid Lite3 message: {exc.message}",
                               src, seq=seq) from None
        built.append((seq, t, F.build_frame(seq, t, enc(tags) if tags else b"", enc(data))))

    if size is None:
        size = max(h.file_size, F.MIN_POOL_SIZE)
    try:
        geo = F.plan_geometry(size, index_capacity)
    except ValueError as exc:
        raise UsageError(f"cannot import into a pool of {size} bytes: {exc}", hint="choose another --size") from None
    # Keep the newest messages that fit the ring (all of them at the default size).
    room, keep = geo.ring_size, 0
    for _, _, frame in reversed(built):
        n = F.align(len(frame))
        if n > room:
            break
        room -= n
        keep += 1
    dropped = len(built) - keep
    built = built[dropped:]

    ring = bytearray()
    index = bytearray(geo.index_capacity * F.INDEX_ENTRY_SIZE)
    for seq, _, frame in built:
        pos = len(ring)
        if geo.index_capacity:
            F.INDEX_ENTRY.pack_into(index, (seq % geo.index_capacity) * F.INDEX_ENTRY_SIZE, (pos >> 3) + 1)
        ring += frame + b"\0" * (F.align(len(frame)) - len(frame))
    if built:
        first, last, last_t = built[0][0], built[-1][0], built[-1][1]
    else:  # empty: the next append continues upstream's numbering
        first, last, last_t = h.newest_seq + 1, h.newest_seq, 0
    state = F.State(gen=1, head=len(ring), tail=0, newest=last, oldest=first, newest_time=last_t)

    dest = Path(dest)
    in_place = dest.exists() and os.path.samefile(dest, source)
    if dest.exists() and not in_place:
        raise AlreadyExistsError(f"pool already exists: {dest}", str(dest),
                                 hint="choose another NAME for the imported pool, or delete that one first")
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.import.tmp"
    backup = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, geo.file_size)
            os.pwrite(fd, F.pack_static(geo, "json", built[0][1] if built else 0), 0)
            os.pwrite(fd, F.pack_state(state), F.STATE_A_OFFSET)
            if index:
                os.pwrite(fd, bytes(index), geo.index_offset)
            if ring:
                os.pwrite(fd, bytes(ring), geo.ring_offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        from .doctor import check_pool

        report = check_pool(tmp)
        if not report.ok or report.messages_checked != len(built):
            raise InternalError(f"imported pool failed its check: {[i.message for i in report.issues]}",
                                hint="this is a bug; the source pool is unchanged")
        from . import locks

        # Into place under the directory's admin lock (bounded, then Busy), as create does.
        with locks.admin_lock(dest.parent, locks.resolve_timeout()):
            if in_place:
                backup = dest.with_name(f"{dest.name}.upstream-v{version}.bak")
                try:
                    os.link(dest, backup)
                except FileExistsError:
                    raise AlreadyExistsError(f"a backup from an earlier import is in the way: {backup}", str(backup),
                                             hint="move or delete it, then import again") from None
                os.replace(tmp, dest)
            else:
                try:
                    os.link(tmp, dest)
                except FileExistsError:
                    raise AlreadyExistsError(f"pool already exists: {dest}", str(dest)) from None
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                        raise
                    os.rename(tmp, dest)
    except OSError as exc:
        raise from_os_error(exc, str(dest), action="import into") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return ImportReport(src, str(dest), len(built), built[0][0] if built else None,
                        built[-1][0] if built else None, dropped, None if backup is None else str(backup))
