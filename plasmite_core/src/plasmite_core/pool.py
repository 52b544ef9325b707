"""The pool file engine: create, open, append under a lock, read without one.

Writers serialize on ``flock`` of the pool file (plus a thread lock for handles
shared by threads), held only while copying already-encoded bytes into the
mapping and publishing the new state. Readers never lock: they copy bytes out
of the mapping, then re-read the state and keep only what was not overwritten
meanwhile, and every frame's CRC is checked before it is returned.

Publish order for one append (see docs/format.md):
1. if the ring must make room, publish the advanced tail first (state slot);
2. write the pad (if wrapping) and the frame bytes;
3. write the index slot;
4. publish the new head/newest in the other state slot;
5. bump the notify counter (and futex-wake sleepers).
A crash at any step leaves a state slot that describes only whole frames.

Why one module of this size: the locked append (single and batch) and the
lock-free read loop share the mapping, the state-slot protocol and the
fault points of the crash campaign; their hot paths are inlined here on
purpose (one call costs as much as the copy) and kept equal to the planner
in format.py by tests/core/test_core_placement.py.

When plasmite-speedups was built with its C extension (and ``PLASMITE_PURE``
is not set), the work inside the lock (state read, placement, eviction walk,
frame and index writes, state publish) and get-by-seq run in one C call
(``plasmite_speedups._pool.Ring``); the ``*_py`` methods here stay the
reference, and the C code hands anything unusual back to them before writing
(tests/core/test_core_speedups.py compares the files byte for byte).
"""

from __future__ import annotations

import _thread  # threading's Lock, without importing threading (start-up)
import errno
import mmap
import os
import struct
import time
import zlib

from . import format as F
from . import locks
from .errors import (
    AlreadyExistsError,
    BusyError,
    CorruptError,
    ErrorKind,
    NotFoundError,
    PlasmiteError,
    UsageError,
    from_os_error,
)
from .framescan import BADLEN as _S_BADLEN, BIG as _S_BIG, END as _S_END, PAD as _S_PAD
from .framescan import COMPILED as _SCAN_IN_PLACE
from .framescan import scan_chunk as _scan_chunk
from .notify import Notifier
from .speedups import compiled

TYPE_CHECKING = False  # pathlib is imported where a Path is made: it is off the one-shot path
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Sequence

_PREFIX = F.FRAME_PREFIX
_HEAD = F.FRAME_HEAD
_REST = F.FRAME_REST
_INDEX = F.INDEX_ENTRY
_STATE_PAIR = F.STATE_PAIR
_STATE_BODY = F.STATE_BODY
_CRC_PAD = struct.Struct("<II")
_ZEROS = bytes(8)
_GENS = struct.Struct("<Q56xQ")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_NOTIFY = F.NOTIFY_COUNTER_OFFSET
_WAITER = F.WAITER_DEADLINE_OFFSET
# u64 word indexes of the header (for the cast("Q") view)
_QA = F.STATE_A_OFFSET // 8
_QB = F.STATE_B_OFFSET // 8
_QNOTIFY = F.NOTIFY_COUNTER_OFFSET // 8  # the futex word is the low half (little endian)
_QWAITER = F.WAITER_DEADLINE_OFFSET // 8
_LEN_SEQ = struct.Struct("<IIQ")
_crc32 = zlib.crc32
_PAD = F.PAD_MARK
_MIN_FRAME = F.MIN_FRAME
_SA = F.STATE_A_OFFSET
_SB = F.STATE_B_OFFSET
_time_ns = time.time_ns
_LOCK_EX_NB = locks.LOCK_EX_NB
_LOCK_UN = locks.LOCK_UN
_flock = locks.flock
_wait_lock = locks.wait_for_write_lock
_QLIFE = F.LIFECYCLE_OFFSET // 8
_plan = F.plan_placement

SCAN_CHUNK = 256 * 1024


_COUNTER_LIMIT = 1 << 63  # a writer refuses a state whose seq, head or generation reaches this
_cpool = compiled("_pool")
COMPILED = _cpool is not None
_Ring = _cpool.Ring if _cpool is not None else None
_PUNT = _cpool.PUNT if _cpool is not None else 0  # a Ring call's answer when the Python path must do the work
_C_FLOCK = locks.HAVE_FCNTL  # the C call may take the flock itself (not where the lock is a sidecar)

# Test-only fault injection: with PLASMITE_FAULT=<step>[:<n>] in the
# environment, the process SIGKILLs itself the n-th time it reaches that step
# (default 1st), in single appends and in batches (append_many) alike. Steps,
# in order: locked, evict_published, pad_written, frame_written (dies after
# writing half the frame, or half a batch's run), index_written,
# state_published (dies after writing half the state slot). Off, the cost is
# one global truth test per step. On the compiled path the Ring call stops at
# the same step after the same partial write, and ``_ring_call`` dies.
FAULT_STEPS = ("locked", "evict_published", "pad_written", "frame_written", "index_written", "state_published")
_fault_spec = os.environ.get("PLASMITE_FAULT")
_faults = bool(_fault_spec)
_fault_count = 0


def _fault(step: str) -> None:
    global _fault_count
    name, _, nth = (_fault_spec or "").partition(":")
    if step != name:
        return
    _fault_count += 1
    if _fault_count >= int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _ring_call(fn, *args):
    """A Ring append with the armed fault point (test-only): the C code counts
    the step's reaches, stops at the one that fires (after the same partial
    write as the Python path) and answers ``-step``; the process dies here."""
    global _fault_count
    _fault("locked")
    name, _, nth = (_fault_spec or "").partition(":")
    step = FAULT_STEPS.index(name) if name in FAULT_STEPS else 0
    if step == 0:
        return fn(*args)
    r = fn(*args, step, int(nth or 1) - _fault_count)
    if r.__class__ is int:
        if r < 0:
            _fault_count = int(nth or 1) - 1
            _fault(name)
        return r
    _fault_count += r[2]
    return r[:2]


class PoolFile:
    """One open pool file: its mapping, geometry and lock."""

    def __init__(self, path: str | Path, fd: int, mm: mmap.mmap, header: F.StaticHeader, writable: bool,
                 lock_timeout: float | None = None) -> None:
        self._path = path
        self.fd = fd
        # Longest wait for the write lock (seconds) before Busy; see locks.py.
        self.lock_timeout = locks.resolve_timeout(lock_timeout)
        self.mm = mm
        self.header = header
        self.writable = writable
        geo = header.geometry
        self.ring_offset = geo.ring_offset
        self.ring_size = geo.ring_size
        self.index_offset = geo.index_offset
        self.index_capacity = geo.index_capacity
        self.codec_name = header.codec
        self.notifier = Notifier(mm)
        self._tlock = _thread.allocate_lock()
        self._closed = False
        self._wstate: tuple | None = None
        # Typed views for the hot path (item access is cheaper than struct).
        self._hq = memoryview(mm)[: F.HEADER_SIZE].cast("Q") if writable else None
        self._iv = (
            memoryview(mm)[geo.index_offset : geo.index_offset + geo.index_capacity * 4].cast("I")
            if writable and geo.index_capacity
            else None
        )
        self._ring: Any = (
            _Ring(mm, geo.ring_offset, geo.ring_size, geo.index_offset, geo.index_capacity)
            if _Ring is not None else None
        )
        if self._ring is not None:
            self._ring.wake = self.notifier.wake
        self._max_body = geo.ring_size - 32  # tags + payload beyond this: a frame larger than the ring

    @property
    def path(self) -> Path:
        """The pool file's path, made a ``Path`` on first use (a one-shot feed never needs one)."""
        path = self._path
        if isinstance(path, str):
            from pathlib import Path

            path = self._path = Path(path)
        return path

    # ------------------------------------------------------------------ open
    @classmethod
    def create(cls, path: Path, size: int, index_capacity: int | None = None, codec: str = "json",
               lock_timeout: float | None = None) -> "PoolFile":
        """Create a pool file atomically (a hidden temp file, then a hard link).

        Before allocating, temp files that dead creators left in the directory
        are removed; the link and the first open happen under the directory's
        admin lock, so a concurrent delete sees either no pool or the whole one.
        """
        timeout = locks.resolve_timeout(lock_timeout)
        try:
            geo = F.plan_geometry(int(size), index_capacity)
        except ValueError as exc:
            raise UsageError(
                f"cannot create pool: {exc}",
                path=str(path),
                hint=f"choose a size between {F.MIN_POOL_SIZE} bytes (64K) and 1T, e.g. --size 8M",
            ) from None
        if len(codec.encode("ascii", "replace")) > 16:
            raise UsageError(f"codec name {codec!r} is too long", hint="codec names are at most 16 ASCII characters")
        from pathlib import Path

        path = Path(path)
        parent = path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise from_os_error(exc, str(parent), action="create directory") from None
        if path.exists():
            raise AlreadyExistsError(
                f"pool already exists: {path}", str(path), hint="open it instead, or delete it first"
            )
        from . import leftovers

        with locks.admin_lock(parent, timeout):
            leftovers.sweep(parent)
        tmp = parent / leftovers.temp_name(path.name)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.ftruncate(fd, geo.file_size)
                # Reserve the blocks now: a sparse pool on a file system that
                # fills up later would kill its writer with SIGBUS on an mmap
                # store; reserving turns that into ENOSPC at create.
                # Refuse up front what cannot fit, rather than half-filling
                # the file system before fallocate gives up.
                try:
                    vfs = os.fstatvfs(fd)
                    free = vfs.f_bavail * vfs.f_frsize
                except OSError:
                    free = None
                if free is not None and geo.file_size > free:
                    raise OSError(errno.ENOSPC, f"needs {geo.file_size} bytes, {free} free")
                try:
                    os.posix_fallocate(fd, 0, geo.file_size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                os.pwrite(fd, F.pack_static(geo, codec, _time_ns()), 0)
                init = F.pack_state(F.INITIAL_STATE)
                os.pwrite(fd, init, _SA)
                os.fsync(fd)
            finally:
                os.close(fd)
            with locks.admin_lock(parent, timeout):
                try:
                    os.link(tmp, path)  # atomic, never clobbers a pool created meanwhile
                except FileExistsError:
                    raise AlreadyExistsError(
                        f"pool already exists: {path}", str(path), hint="open it instead, or delete it first"
                    ) from None
                except OSError as exc:
                    if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                        # Filesystems without hard links: exclusive rename fallback.
                        if path.exists():
                            raise AlreadyExistsError(f"pool already exists: {path}", str(path)) from None
                        os.rename(tmp, path)
                    else:
                        raise
                return cls.open(path, timeout)
        except PlasmiteError:
            raise
        except OSError as exc:
            raise from_os_error(exc, str(path), action="create pool") from None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    @classmethod
    def open(cls, path: str | Path, lock_timeout: float | None = None) -> "PoolFile":
        """Open a pool file; a ``str`` path is used (and shown in errors) as given."""
        if not isinstance(path, str):
            from pathlib import Path

            path = Path(path)
        lock_timeout = locks.resolve_timeout(lock_timeout)
        writable = True
        try:
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError as exc:
                if exc.errno != errno.EROFS:
                    raise
                raise PermissionError(exc.errno, exc.strerror, str(path)) from None
        except PermissionError:
            # No write access (mode, immutable file, read-only mount): readers
            # still follow it; appends answer Permission.
            try:
                fd = os.open(path, os.O_RDONLY)
                writable = False
            except OSError as exc:
                raise from_os_error(exc, str(path), action="open pool") from None
        except FileNotFoundError:
            raise NotFoundError(
                f"pool not found: {path}", str(path),
                hint="create it first (`pls pool create NAME`, or feed/follow with --create)",
            ) from None
        except IsADirectoryError:
            raise UsageError(f"not a pool file: {path} is a directory", str(path)) from None
        except OSError as exc:
            raise from_os_error(exc, str(path), action="open pool") from None
        try:
            locks.register(fd, path)
            size = os.fstat(fd).st_size
            if size < F.HEADER_SIZE:
                raise CorruptError(
                    f"corrupt pool: {path} is {size} bytes, too short for a pool header",
                    str(path), offset=0, hint="restore it from a backup or delete and recreate it",
                )
            head = os.pread(fd, F.STATIC.size + 4, 0)
            try:
                header = F.parse_static(head, size)
            except F.HeaderError as exc:
                if exc.newer:
                    raise UsageError(
                        f"{path}: {exc}", str(path), offset=exc.offset,
                        hint="upgrade plasmite to open this pool",
                    ) from None
                raise CorruptError(
                    f"corrupt pool header in {path}: {exc}", str(path), offset=exc.offset,
                    hint="run `pls doctor` on it; restore from a backup or delete and recreate it",
                ) from None
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            mm = mmap.mmap(fd, header.geometry.file_size, access=access)
        except BaseException:
            locks.unregister(fd)
            os.close(fd)
            raise
        pf = cls(path, fd, mm, header, writable, lock_timeout)
        try:
            pf.read_state()
        except BaseException:
            pf.close()
            raise
        return pf

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.notifier.release()
        for view in (self._hq, self._iv):
            if view is not None:
                view.release()
        self._hq = self._iv = None
        if self._ring is not None:
            self._ring.release()
        try:
            self.mm.close()
        except BufferError:
            pass  # a live export (stream in another thread); the GC closes it
        locks.unregister(self.fd)
        try:
            os.close(self.fd)
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self._closed

    # ----------------------------------------------------------------- state
    def _state_fields(self) -> tuple:
        """(gen, head, tail, newest, oldest, newest_time) of the newest valid slot."""
        mm = self.mm
        for _ in range(1000):
            f = _STATE_PAIR.unpack_from(mm, _SA)
            if f[0] >= f[8]:
                if _crc32(mm[_SA : _SA + 48]) == f[6]:
                    return f[:6]
                if _crc32(mm[_SB : _SB + 48]) == f[14]:
                    return f[8:14]
            else:
                if _crc32(mm[_SB : _SB + 48]) == f[14]:
                    return f[8:14]
                if _crc32(mm[_SA : _SA + 48]) == f[6]:
                    return f[:6]
            time.sleep(0.0001)  # a writer is mid-publish of one slot and the other is damaged
        raise CorruptError(
            f"corrupt pool: both state slots of {self.path} fail their checksum",
            str(self.path), offset=_SA, hint="run `pls doctor --repair` or restore from a backup",
        )

    def read_state(self) -> F.State:
        return F.State(*self._state_fields())

    def lost(self) -> list[tuple[int, int]]:
        """Seq ranges that repairs dropped (see ``format.retained``)."""
        return F.parse_lost(self.mm)

    def _publish(self, gen: int, head: int, tail: int, newest: int, oldest: int, ntime: int) -> None:
        body = _STATE_BODY.pack(gen, head, tail, newest, oldest, ntime)
        off = _SA if gen & 1 else _SB
        self.mm[off : off + 52] = body + _U32.pack(_crc32(body))
        self._wstate = (gen, head, tail, newest, oldest, ntime)

    # ---------------------------------------------------------------- append
    def _check_writable(self) -> None:
        if self._closed:
            raise UsageError("pool is closed", hint="open it again")
        if not self.writable:
            raise PlasmiteError(
                ErrorKind.PERMISSION, f"permission denied: {self.path} is read-only", str(self.path),
                hint="check the file's permissions; readers can still follow it",
            )

    def _too_big(self, flen: int) -> UsageError:
        return UsageError(
            f"message needs {flen} bytes but the pool's ring holds {self.ring_size}",
            str(self.path), hint="create a larger pool (e.g. --size 64M) or send a smaller message",
        )

    def _evict(self, tail: int, oldest: int, need: int, head: int, newest: int) -> tuple[int, int]:
        """Advance the tail over whole frames until ``tail >= need``; a ``need``
        at or past ``head`` drops every old frame (see ``plan_placement``)."""
        if need >= head:
            return need, newest + 1
        mm = self.mm
        R = self.ring_size
        ro = self.ring_offset
        while tail < need:
            phys = tail % R
            flen, crc, seq = _LEN_SEQ.unpack_from(mm, ro + phys) if R - phys >= 16 else (*_CRC_PAD.unpack_from(mm, ro + phys), 0)
            if crc == _PAD:
                if flen < 8 or flen & 7 or phys + flen > R:
                    raise self._corrupt("bad pad frame", ro + phys, appending=True)
                tail += flen
                continue
            if flen < _MIN_FRAME or flen & 7 or phys + flen > R or seq < oldest or seq >= _COUNTER_LIMIT:
                raise self._corrupt(
                    f"frame at the ring tail is damaged (seq {seq}, expected {oldest})", ro + phys, appending=True
                )
            tail += flen
            oldest = seq + 1  # a repaired pool may have a hole in its seqs
        return tail, oldest

    def _corrupt(self, what: str, offset: int, appending: bool = False) -> CorruptError:
        if appending:
            hint = ("appends are refused until the pool is repaired: the ring must overwrite this frame next "
                    "and cannot step over it; `pls doctor --repair` keeps every frame that verifies")
        else:
            hint = ("`pls doctor --repair` keeps every frame that verifies and drops this one (followers see a gap); "
                    "appends go on meanwhile, unless the ring reaches a frame it cannot step over")
        return CorruptError(
            f"corrupt pool {self.path}: {what} at offset {offset}", str(self.path), offset=offset, hint=hint,
        )

    def damaged_message(self, seq: int, what: str) -> CorruptError:
        """The Corrupt error for a frame whose checksum holds but whose
        payload or tags are not valid for the codec (a forged or foreign write)."""
        offset = None
        if not self._closed:
            try:
                pos = self.locate(seq, self.read_state())
                if pos is not None:
                    offset = self.ring_offset + pos % self.ring_size
            except (PlasmiteError, ValueError):
                pass  # damaged elsewhere too, or unmapped: report without an offset
        where = "" if offset is None else f" at offset {offset}"
        return CorruptError(
            f"corrupt pool {self.path}: message seq {seq}{where}: {what}", str(self.path), seq=seq, offset=offset,
            hint="its checksum holds, so the bytes were written as they are (a forged or foreign write); "
            "`pls doctor --deep` lists such messages and `pls doctor --repair --deep` drops them",
        )

    def _locked_state(self) -> tuple:
        """State for a writer holding the lock: the cached copy of what this
        handle last published when no other writer has published since
        (checked by the two generation words), else a verified read."""
        cached = self._wstate
        if cached is not None:
            hq = self._hq
            ga = hq[_QA]
            gb = hq[_QB]
            if (ga if ga > gb else gb) == cached[0]:
                return cached
        return self._writer_state()

    def _writer_state(self) -> tuple:
        """The verified state for a writer holding the lock, refusing a pool
        that was deleted meanwhile (a writer's cached state never survives a
        delete: it publishes a new generation, so this costs the hot path nothing)."""
        if self._hq[_QLIFE] == F.LIFE_DELETED:
            raise NotFoundError(
                f"pool was deleted: {self.path}", str(self.path),
                hint="the pool was deleted while this handle had it open; nothing was appended. "
                "Open it again (create it first if needed) to keep writing",
            )
        st = self._state_fields()
        if st[0] >= _COUNTER_LIMIT or st[1] >= _COUNTER_LIMIT or st[3] >= _COUNTER_LIMIT:
            # Only a forged state gets here (2**63 messages or bytes are never
            # written): the next seq, position or generation would not fit.
            raise self._corrupt("the state's counters are out of range (near 2**64)", _SA, appending=True)
        return st

    def _append_c(self, tags: bytes, payload: bytes, flush: bool = False) -> tuple[int, int]:
        """``append`` with the locked work in one Ring call. The common case
        (no flush, the flock free) is that one call, flock and wake-up
        included; else the lock, the wake-up and the flush are taken here."""
        tlock = self._tlock
        if _C_FLOCK and not (flush or _faults) and tlock.acquire(False):
            try:
                r = self._ring.locked_append(self.fd, tags, payload)
            finally:
                tlock.release()
            if r:
                return r
            if r is not None:  # closed, read-only, too big or unusual: the Python path says why
                return self._append_py(tags, payload, flush)
            # None: another process holds the flock; wait for it below.
        hq = self._hq
        if hq is None:
            self._check_writable()
        if len(tags) + len(payload) > self._max_body:
            raise self._too_big((39 + len(tags) + len(payload)) & ~7)
        self._take_write_lock()
        try:
            try:
                r = _ring_call(self._ring.append, tags, payload) if _faults else self._ring.append(tags, payload)
                if r:
                    if hq[_QWAITER] > r[1]:
                        self.notifier.wake()
                    if flush:
                        self._flush()
            finally:
                _flock(self.fd, _LOCK_UN)
        finally:
            tlock.release()
        return r if r else self._append_py(tags, payload, flush)

    def _append_py(self, tags: bytes, payload: bytes, flush: bool = False) -> tuple[int, int]:
        """Append one encoded message; returns (seq, time_ns).

        The hot path: everything is inlined (state, publish, notify) because
        each Python call costs as much as the copy itself.
        """
        hq = self._hq
        if hq is None:
            self._check_writable()
        flen = (39 + len(tags) + len(payload)) & ~7
        R = self.ring_size
        if flen > R:
            raise self._too_big(flen)
        mm = self.mm
        tlock = self._tlock
        # inlined _take_write_lock (the pure path's per-append hot path)
        if not tlock.acquire(False):
            _wait_lock(self.fd, self.lock_timeout, self.path, tlock)
        else:
            try:
                _flock(self.fd, _LOCK_EX_NB)
            except BlockingIOError:
                _wait_lock(self.fd, self.lock_timeout, self.path, tlock, True)
            except BaseException:
                tlock.release()
                raise
        try:
            try:
                if _faults:
                    _fault("locked")
                cached = self._wstate
                if cached is not None and cached[0] == (hq[_QA] if hq[_QA] > hq[_QB] else hq[_QB]):
                    gen, head, tail, newest, oldest, ntime = cached
                else:
                    gen, head, tail, newest, oldest, ntime = self._writer_state()
                seq = newest + 1
                t = _time_ns()
                if t < ntime:
                    t = ntime
                body = _REST.pack(seq, t, len(payload), len(tags), 1, 0) + tags + payload
                phys = head % R
                if R - phys >= flen:
                    # No wrap: the planner's answer, inlined for the hot path.
                    end = head + flen
                    need = end - R
                    pads = None
                else:
                    plan = _plan(head, R, (flen,))
                    end = plan.head
                    need = plan.need
                    pads = plan.pads
                    phys = 0
                if need > tail:
                    tail, oldest = self._evict(tail, oldest, need, head, newest)
                    gen += 1
                    self._publish(gen, head, tail if tail < head else head, newest, oldest, ntime)
                    if _faults:
                        _fault("evict_published")
                ro = self.ring_offset
                if pads:
                    p, room = pads[0]
                    p %= R
                    mm[ro + p : ro + p + 8] = _CRC_PAD.pack(room, _PAD)
                    if _faults:
                        _fault("pad_written")
                if _faults:
                    # torn frame: half the bytes, then die
                    half = (8 + len(body)) // 2
                    mm[ro + phys : ro + phys + half] = (_PREFIX.pack(flen, _crc32(body) | 1) + body)[:half]
                    _fault("frame_written")
                mm[ro + phys : ro + phys + 8 + len(body)] = _PREFIX.pack(flen, _crc32(body) | 1) + body
                iv = self._iv
                if iv is not None:
                    iv[seq % self.index_capacity] = (phys >> 3) + 1
                if _faults:
                    _fault("index_written")
                gen += 1
                st = _STATE_BODY.pack(gen, end, tail, seq, oldest, t)
                off = _SA if gen & 1 else _SB
                if _faults:
                    # torn state publish: half the slot, then die
                    mm[off : off + 26] = (st + _U32.pack(_crc32(st)))[:26]
                    _fault("state_published")
                mm[off : off + 52] = st + _U32.pack(_crc32(st))
                self._wstate = (gen, end, tail, seq, oldest, t)
                # Wake-up: the futex word takes the new generation; wake only
                # while a follower's announced deadline lies ahead.
                hq[_QNOTIFY] = gen & 0xFFFFFFFF
                if hq[_QWAITER] > t:
                    self.notifier.wake()
                if flush:
                    self._flush()
            except BaseException:
                self._wstate = None
                raise
            finally:
                _flock(self.fd, _LOCK_UN)
        finally:
            tlock.release()
        return seq, t

    def _append_runs_c(self, items: Sequence[tuple[bytes, bytes]], flush: bool) -> list[tuple[int, int, int]]:
        """``append_batch`` with each chunk's locked work in one Ring call;
        returns one ``(first_seq, count, time_ns)`` per chunk."""
        if self._closed or not self.writable:
            self._check_writable()
        ring = self._ring
        ends = ring.chunk_ends(items)
        if ends is None:  # not a list of (bytes, bytes): the Python path
            return [(seq, 1, t) for seq, t in self._append_batch_py(items, flush)]
        if ends.__class__ is int:
            tags, payload = items[ends]
            raise self._too_big((39 + len(tags) + len(payload)) & ~7)
        hq = self._hq
        tlock = self._tlock
        fd = self.fd
        runs: list[tuple[int, int, int]] = []
        i = 0
        try:
            for j in ends:
                self._take_write_lock()
                try:
                    try:
                        r = _ring_call(ring.append_chunk, items, i, j) if _faults else ring.append_chunk(items, i, j)
                        if r:
                            if hq[_QWAITER] > r[1]:
                                self.notifier.wake()
                            if flush:
                                self._flush()
                    finally:
                        _flock(fd, _LOCK_UN)
                finally:
                    tlock.release()
                if r:
                    runs.append((r[0], j - i, r[1]))
                else:
                    chunk = items[i:j]
                    rec = self._append_chunk(chunk, [(39 + len(tg) + len(pl)) & ~7 for tg, pl in chunk], flush)
                    runs.append((rec[0][0], len(rec), rec[0][1]))
                i = j
        except PlasmiteError as exc:
            exc.committed = [(s, t) for first, n, t in runs for s in range(first, first + n)]
            raise
        return runs

    def _append_batch_c(self, items: Sequence[tuple[bytes, bytes]], flush: bool = False) -> list[tuple[int, int]]:
        return [(s, t) for first, n, t in self._append_runs_c(items, flush) for s in range(first, first + n)]

    def _append_seqs_c(self, items: Sequence[tuple[bytes, bytes]], flush: bool = False) -> range | list[int]:
        runs = self._append_runs_c(items, flush)
        if not runs:
            return range(0)
        if len(runs) == 1 or all(runs[k][0] == runs[k - 1][0] + runs[k - 1][1] for k in range(1, len(runs))):
            return range(runs[0][0], runs[-1][0] + runs[-1][1])
        return [s for first, n, _ in runs for s in range(first, first + n)]

    def _append_seqs_py(self, items: Sequence[tuple[bytes, bytes]], flush: bool = False) -> range | list[int]:
        receipts = self._append_batch_py(items, flush)
        if not receipts:
            return range(0)
        first, last = receipts[0][0], receipts[-1][0]
        if last - first + 1 == len(receipts):
            return range(first, last + 1)
        return [seq for seq, _ in receipts]

    def _append_batch_py(self, items: Sequence[tuple[bytes, bytes]], flush: bool = False) -> list[tuple[int, int]]:
        """Append many (tags, payload) in order; returns [(seq, time_ns)].

        Frames are written in chunks of at most half the ring (a frame larger
        than that is a chunk of its own), each under one lock with contiguous
        seqs, so a batch never evicts its own messages; other writers' messages
        may land between chunks. A PlasmiteError raised by a later chunk
        carries ``committed``: the receipts of the chunks already stored.
        """
        if self._closed or not self.writable:
            self._check_writable()
        R = self.ring_size
        lengths = []
        for tags, payload in items:
            flen = (39 + len(tags) + len(payload)) & ~7
            if flen > R:
                raise self._too_big(flen)
            lengths.append(flen)
        out: list[tuple[int, int]] = []
        # Keep each locked section to at most half the ring so a batch never
        # evicts its own messages.
        i = 0
        n = len(items)
        try:
            while i < n:
                j = i
                total = 0
                while j < n and (j == i or total + lengths[j] <= R // 2):
                    total += lengths[j]
                    j += 1
                out.extend(self._append_chunk(items[i:j], lengths[i:j], flush))
                i = j
        except PlasmiteError as exc:
            exc.committed = out
            raise
        return out

    def _append_chunk(self, items, lengths, flush) -> list[tuple[int, int]]:
        mm = self.mm
        ro = self.ring_offset
        R = self.ring_size
        icap = self.index_capacity
        tlock = self._tlock
        self._take_write_lock()
        try:
            try:
                if _faults:
                    _fault("locked")
                gen, head, tail, newest, oldest, ntime = self._locked_state()
                try:
                    plan = _plan(head, R, lengths)
                except ValueError as exc:
                    raise UsageError(f"batch does not fit the ring: {exc}", str(self.path)) from None
                if plan.need > tail:
                    # Check the frames being evicted are what the state says.
                    tail, oldest = self._evict(tail, oldest, plan.need, head, newest)
                    gen += 1
                    self._publish(gen, head, tail if tail < head else head, newest, oldest, ntime)
                    if _faults:
                        _fault("evict_published")
                for pos, room in plan.pads:
                    p = pos % R
                    mm[ro + p : ro + p + 8] = _CRC_PAD.pack(room, _PAD)
                if _faults and plan.pads:
                    _fault("pad_written")
                t = _time_ns()
                if t < ntime:
                    t = ntime
                seq = newest
                out = []
                rest_pack = _REST.pack
                prefix_pack = _PREFIX.pack
                iv = self._iv
                # Frames between pads are contiguous: join them and copy once.
                # A run also ends where a frame ends exactly at the ring end (the
                # next one starts a new lap at physical 0 without a pad).
                parts: list[bytes] = []
                run_start = run_end = -1
                for (tags, payload), flen, pos in zip(items, lengths, plan.positions):
                    seq += 1
                    body = rest_pack(seq, t, len(payload), len(tags), 1, 0) + tags + payload
                    if pos != run_end or not pos % R:
                        if parts:
                            p = run_start % R
                            mm[ro + p : ro + p + run_end - run_start] = b"".join(parts)
                            parts = []
                            if _faults:
                                _fault("frame_written")
                        run_start = run_end = pos
                    parts.append(prefix_pack(flen, _crc32(body) | 1))
                    parts.append(body)
                    pad = flen - 8 - len(body)
                    if pad:
                        parts.append(_ZEROS[:pad])
                    run_end += flen
                    if iv is not None:
                        iv[seq % icap] = ((pos % R) >> 3) + 1
                    out.append((seq, t))
                if parts:
                    p = run_start % R
                    if _faults:
                        # torn run: half its bytes, then die
                        half = (run_end - run_start) // 2
                        mm[ro + p : ro + p + half] = b"".join(parts)[:half]
                        _fault("frame_written")
                    mm[ro + p : ro + p + run_end - run_start] = b"".join(parts)
                if _faults:
                    _fault("index_written")
                    st = _STATE_BODY.pack(gen + 1, plan.head, tail, seq, oldest, t)
                    off = _SA if (gen + 1) & 1 else _SB
                    mm[off : off + 26] = (st + _U32.pack(_crc32(st)))[:26]
                    _fault("state_published")
                self._publish(gen + 1, plan.head, tail, seq, oldest, t)
                hq = self._hq
                hq[_QNOTIFY] = (gen + 1) & 0xFFFFFFFF
                if hq[_QWAITER] > t:
                    self.notifier.wake()
                if flush:
                    self._flush()
            except BaseException:
                self._wstate = None
                raise
            finally:
                _flock(self.fd, _LOCK_UN)
        finally:
            tlock.release()
        return out

    def _flush(self) -> None:
        try:
            self.mm.flush()
            os.fsync(self.fd)
        except OSError as exc:
            raise from_os_error(exc, str(self.path), action="flush pool") from None

    # ------------------------------------------------------------------ read
    def logical(self, phys: int, tail: int) -> int:
        R = self.ring_size
        return tail + ((phys - tail % R) % R)

    def locate(self, seq: int, st: F.State) -> int | None:
        """Logical position of a retained ``seq`` (index first, scan as fallback)."""
        mm = self.mm
        R = self.ring_size
        ro = self.ring_offset
        icap = self.index_capacity
        if icap:
            (v,) = _INDEX.unpack_from(mm, self.index_offset + (seq % icap) * 4)
            if v:
                phys = (v - 1) << 3
                if phys + 16 <= R:
                    flen, crc, fseq = _LEN_SEQ.unpack_from(mm, ro + phys)
                    if fseq == seq and crc != _PAD:
                        pos = self.logical(phys, st.tail)
                        if pos < st.head:
                            return pos
        # Fallback (index smaller than the retained count): walk from the tail.
        pos = st.tail
        head = st.head
        while pos < head:
            phys = pos % R
            flen, crc = _CRC_PAD.unpack_from(mm, ro + phys)
            if flen < (8 if crc == _PAD else _MIN_FRAME) or flen & 7 or phys + flen > R:
                if pos < self._state_fields()[2]:
                    return None  # overwritten while walking: the seq is no longer retained
                raise self._corrupt("frame length out of range", ro + phys)
            if crc != _PAD and R - phys >= 16:
                (fseq,) = struct.unpack_from("<Q", mm, ro + phys + 8)
                if fseq == seq:
                    return pos
                if fseq > seq:
                    return None
            pos += flen
        return None

    def _get_frame_c(self, seq: int) -> tuple[int, int, bytes, bytes] | None:
        fr = self._ring.get(seq)
        if fr is not _PUNT:
            return fr
        return self._get_frame_py(seq)

    def _get_frame_py(self, seq: int) -> tuple[int, int, bytes, bytes] | None:
        """The verified frame of a retained ``seq``, or None when it is not
        retained. Index lookup, one copy, then a tail check: no scan."""
        mm = self.mm
        R = self.ring_size
        ro = self.ring_offset
        icap = self.index_capacity
        for _ in range(8):
            _, head, tail, newest, oldest, _ = self._state_fields()
            if seq < oldest or seq > newest:
                return None
            pos = None
            if icap:
                (v,) = _INDEX.unpack_from(mm, self.index_offset + (seq % icap) * 4)
                if v:
                    phys = (v - 1) << 3
                    if phys + 40 <= R:
                        pos = tail + ((phys - tail % R) % R)
                        if pos >= head:
                            pos = None
            if pos is None:
                pos = self.locate(seq, F.State(0, head, tail, newest, oldest, 0))
                if pos is None:
                    return None
            phys = pos % R
            flen = _U32.unpack_from(mm, ro + phys)[0]
            if flen < _MIN_FRAME or flen & 7 or phys + flen > R:
                if pos < self._state_fields()[2]:
                    continue
                raise self._corrupt("frame length out of range", ro + phys)
            buf = mm[ro + phys : ro + phys + flen]
            # A copy whose CRC and seq check out is that message whole; only a
            # failed check needs the tail re-read (overwritten while copying?).
            flen, crc, fseq, t, pl, tl, _, _ = _HEAD.unpack_from(buf, 0)
            end = 32 + tl + pl
            if fseq == seq and crc != _PAD and (end + 7) & ~7 == flen and (_crc32(memoryview(buf)[8:end]) | 1) == crc:
                return fseq, t, buf[32 : 32 + tl], buf[32 + tl : end]
            if pos < self._state_fields()[2]:
                continue
            if fseq != seq or crc == _PAD:
                if icap:
                    # stale index slot (index smaller than the retained count)
                    pos2 = self.locate(seq, F.State(0, head, tail, newest, oldest, 0))
                    if pos2 is None:
                        return None
                    fr = self.read_frame(pos2)
                    if fr is None or fr[0] != seq:
                        continue
                    return fr
                continue
            end = 32 + tl + pl
            if (end + 7) & ~7 != flen or (_crc32(memoryview(buf)[8:end]) | 1) != crc:
                raise self._corrupt("frame checksum mismatch", ro + phys)
            return fseq, t, buf[32 : 32 + tl], buf[32 + tl : end]
        return None

    def read_frame(self, pos: int) -> tuple[int, int, bytes, bytes] | None:
        """Copy and verify the frame at logical ``pos``; None if overwritten meanwhile."""
        mm = self.mm
        R = self.ring_size
        ro = self.ring_offset
        phys = pos % R
        flen = _CRC_PAD.unpack_from(mm, ro + phys)[0]
        if flen < _MIN_FRAME or flen & 7 or phys + flen > R:
            if pos < self._state_fields()[2]:
                return None
            raise self._corrupt("frame length out of range", ro + phys)
        buf = mm[ro + phys : ro + phys + flen]
        st = self._state_fields()
        if pos < st[2]:
            return None
        flen, crc, seq, t, pl, tl, kind, _fl = _HEAD.unpack_from(buf, 0)
        end = 32 + tl + pl
        if (end + 7) & ~7 != flen or crc == _PAD or (_crc32(memoryview(buf)[8:end]) | 1) != crc:
            raise self._corrupt("frame checksum mismatch", ro + phys)
        return seq, t, buf[32 : 32 + tl], buf[32 + tl : end]

    def scan(self, pos: int, limit: int, out: list | None = None) -> tuple[list, int]:
        """Read up to ``limit`` committed frames from logical ``pos``.

        Returns ``(frames, next_pos)``, frames as (seq, time_ns, tags, payload)
        in a list, or in ``out`` when given (a compiled ``Joined`` sink).
        A position the writers have overwritten jumps to the current tail (the
        caller sees the seq jump and reports the retention gap).
        """
        _, head, tail, _, _, _ = self._state_fields()
        if pos < tail:
            pos = tail
        if out is None:
            out = []
        # The compiled scan reads the mapping in place (it copies only the
        # frames it returns); the Python one slices bytes from a copy.
        view = memoryview(self.mm) if _SCAN_IN_PLACE else None
        try:
            return self._scan(pos, limit, head, out, view)
        finally:
            if view is not None:
                view.release()

    def _scan(self, pos: int, limit: int, head: int, out: list, view: memoryview | None) -> tuple[list, int]:
        """``scan``'s loop; every chunk's frames are kept only if the tail
        had not passed them once they were read."""
        mm = self.mm
        R = self.ring_size
        ro = self.ring_offset
        while pos < head and len(out) < limit:
            phys = pos % R
            n = min(R - phys, head - pos, SCAN_CHUNK)
            base = ro + phys
            if n < 8:
                # Positions are 8-aligned: only a damaged state ends the live
                # span inside a frame header (without this check: a busy loop).
                if pos >= self._state_fields()[2]:
                    raise self._corrupt(f"the state's head ({head}) is not on a frame boundary", base)
                pos = self._state_fields()[2]
                continue
            buf = mm[base : base + n] if view is None else view[base : base + n]
            before = len(out)
            off, status = _scan_chunk(buf, phys, R, limit, out)
            # Every read of buf happens before the tail check (buf may be the live mapping).
            flen = _CRC_PAD.unpack_from(buf, off)[0] if status == _S_PAD or status == _S_BIG else 0
            t2 = self._state_fields()[2]
            if pos < t2:
                # Overwritten while read: drop this chunk's frames, resume at the new tail.
                del out[before:]
                pos = t2
                if out:
                    break
                continue
            pos += off
            if status == _S_END:
                continue
            if status == _S_PAD:
                # The ring-end pad, or one a repair wrote over dropped frames.
                if flen < 8 or flen & 7 or phys + off + flen > R or pos + flen > head:
                    raise self._corrupt("bad pad frame", base + off)
                pos += flen
            elif status == _S_BIG:
                if off == 0:
                    # Larger than one chunk: copy it alone.
                    fr = self.read_frame(pos)
                    if fr is not None:
                        out.append(fr)
                        pos += flen
            elif status == _S_BADLEN:
                raise self._corrupt("frame length out of range", base + off)
            else:
                raise self._corrupt("frame checksum mismatch", base + off)
        return out, pos

    def frame_time(self, seq: int, st: F.State) -> int | None:
        pos = self.locate(seq, st)
        if pos is None:
            return None
        phys = pos % self.ring_size
        return struct.unpack_from("<Q", self.mm, self.ring_offset + phys + 16)[0]

    def seq_at_time(self, t_ns: int, st: F.State) -> int:
        """First retained seq whose time is >= t_ns (newest+1 when none)."""
        lo, hi = st.oldest, st.newest + 1
        while lo < hi:
            mid = (lo + hi) // 2
            ft = self.frame_time(mid, st)
            if ft is None:  # evicted meanwhile
                lo = mid + 1
                continue
            if ft >= t_ns:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # The public names: the compiled twins when built, else the reference.
    if COMPILED:
        append, append_batch, append_seqs, get_frame = _append_c, _append_batch_c, _append_seqs_c, _get_frame_c
    else:
        append, append_batch, append_seqs, get_frame = _append_py, _append_batch_py, _append_seqs_py, _get_frame_py

    # ------------------------------------------------------------ admin ops
    def lock(self) -> None:
        """Take the write lock for an admin operation, within ``lock_timeout``."""
        self._take_write_lock()

    def _take_write_lock(self) -> None:
        """This handle's thread lock, then the file's flock, each waited for
        within ``lock_timeout`` (then Busy naming the holder); on an error
        nothing is held."""
        tlock = self._tlock
        if not tlock.acquire(False):
            _wait_lock(self.fd, self.lock_timeout, self.path, tlock)
        else:
            try:
                _flock(self.fd, _LOCK_EX_NB)
            except BlockingIOError:
                _wait_lock(self.fd, self.lock_timeout, self.path, tlock, True)
            except BaseException:
                tlock.release()
                raise

    def unlock(self) -> None:
        _flock(self.fd, _LOCK_UN)
        self._tlock.release()

    def mark_deleted(self) -> None:
        """Under the write lock: tell every handle on this file that its pool is
        gone. Re-publishing the state under a new generation sends writers with
        a cached state to the checked path (``_writer_state``)."""
        self._hq[_QLIFE] = F.LIFE_DELETED
        gen, head, tail, newest, oldest, ntime = self._state_fields()
        self._publish(gen + 1, head, tail, newest, oldest, ntime)
        self._wstate = None


def delete_pool_file(path: Path, lock_timeout: float | None = None) -> None:
    """Remove a pool file so that no writer ever acknowledges an append to it
    afterwards: under the directory's admin lock and the pool's write lock
    (each waited for within ``lock_timeout``, then Busy), unlink the file and
    mark it deleted; writers that still have it open check the mark after
    taking the lock and raise NotFound."""
    from pathlib import Path

    path = Path(path)
    timeout = locks.resolve_timeout(lock_timeout)
    with locks.admin_lock(path.parent, timeout):
        try:
            pf = PoolFile.open(path, timeout)
        except NotFoundError:
            raise NotFoundError(
                f"pool not found: {path}", str(path), hint="`pls pool list` shows existing pools"
            ) from None
        except (CorruptError, UsageError) as exc:
            if exc.kind == ErrorKind.USAGE and not path.is_file():
                raise
            # Not a readable pool (damaged or not ours): no writer can use it.
            _unlink(path)
            return
        try:
            pf.lock()
            try:
                mine, now = os.fstat(pf.fd), os.stat(path)
                if (mine.st_dev, mine.st_ino) != (now.st_dev, now.st_ino):
                    raise BusyError(f"pool was replaced while being deleted: {path}", str(path),
                                    hint="retry the delete")
                _unlink(path)
                if pf.writable:
                    pf.mark_deleted()
            finally:
                pf.unlock()
        except FileNotFoundError:
            raise NotFoundError(f"pool not found: {path}", str(path),
                                hint="`pls pool list` shows existing pools") from None
        finally:
            pf.close()


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        raise from_os_error(exc, str(path), action="delete pool") from None
