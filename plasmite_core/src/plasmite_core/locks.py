"""Which lock guards what, and how long anyone waits for one.

Two locks, both bounded (a wait ends in ``BusyError``, never hangs):

* the **write lock**: ``flock`` of the pool file, taken by every append (and
  by delete and repair). The hot path tries it without blocking; only a
  contended attempt comes here (``wait_for_write_lock``) and polls with a
  growing back-off until the deadline. Where ``fcntl`` is missing, the same
  calls go to a ``filelock`` lock on a sidecar file (``.NAME.plasmite.lock``).
* the **admin lock**: a ``filelock`` lock on ``DIR/.plasmite.lock`` that
  serializes what changes which files exist in a pool directory (create,
  delete, repair, temp-file sweeping), so a delete can never remove a pool
  that another process re-created a moment earlier.

The bound is ``lock_timeout`` (seconds) on ``Client``, else the environment
variable ``PLASMITE_LOCK_TIMEOUT`` (``5``, ``2.5``, ``500ms``, ``5s``), else
``DEFAULT_LOCK_TIMEOUT``. A Busy error names the process holding the write
lock when ``/proc/locks`` tells (Linux).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from _thread import TIMEOUT_MAX

from .errors import BusyError, UsageError

TYPE_CHECKING = False  # typing and pathlib stay off the one-shot path (start-up)
if TYPE_CHECKING:
    import threading
    from pathlib import Path
    from typing import Iterator

DEFAULT_LOCK_TIMEOUT = 5.0
ENV_VAR = "PLASMITE_LOCK_TIMEOUT"
ADMIN_LOCK_NAME = ".plasmite.lock"

try:
    import fcntl

    flock = fcntl.flock
    LOCK_EX_NB = fcntl.LOCK_EX | fcntl.LOCK_NB
    LOCK_UN = fcntl.LOCK_UN
    HAVE_FCNTL = True
except ImportError:  # no fcntl (Windows): a filelock sidecar per pool file
    HAVE_FCNTL = False
    LOCK_EX_NB = 6
    LOCK_UN = 8
    _sidecars: dict[int, object] = {}

    def flock(fd: int, op: int) -> None:
        """``fcntl.flock`` for the two operations the pool uses, on a sidecar."""
        lock = _sidecars[fd]
        if op == LOCK_UN:
            lock.release()  # type: ignore[attr-defined]
            return
        from filelock import Timeout

        try:
            lock.acquire(timeout=0)  # type: ignore[attr-defined]
        except Timeout:
            raise BlockingIOError(11, "pool is locked") from None


def register(fd: int, path: str | Path) -> None:
    """Bind the portable write lock of ``fd`` (no-op where ``fcntl`` exists)."""
    if not HAVE_FCNTL:
        from pathlib import Path

        from filelock import FileLock

        path = Path(path)
        _sidecars[fd] = FileLock(str(path.parent / f".{path.name}.lock"))


def unregister(fd: int) -> None:
    if not HAVE_FCNTL:
        _sidecars.pop(fd, None)


# ------------------------------------------------------------------ bound
def parse_timeout(value: object, source: str = "lock_timeout") -> float:
    """Seconds from a number or a duration text (``500ms``, ``5s``, ``1m``)."""
    if isinstance(value, bool):
        raise UsageError(f"{source} must be a number of seconds, got {value!r}")
    if isinstance(value, (int, float)):
        secs = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        scale = 1.0
        for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
            if text.endswith(unit):
                text, scale = text[: -len(unit)].strip(), factor
                break
        try:
            secs = float(text) * scale
        except ValueError:
            secs = math.nan
    else:
        secs = math.nan
    if not (secs >= 0) or math.isinf(secs):
        raise UsageError(
            f"invalid {source}: {value!r}",
            hint="give seconds (5, 0.5) or a duration (500ms, 5s, 1m); 0 means do not wait",
        )
    return min(secs, TIMEOUT_MAX)


def resolve_timeout(value: object = None) -> float:
    """The bound in seconds: ``value``, else $PLASMITE_LOCK_TIMEOUT, else the default."""
    if value is not None:
        return parse_timeout(value)
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_timeout(env, ENV_VAR)
    return DEFAULT_LOCK_TIMEOUT


# ------------------------------------------------------------- write lock
def wait_for_write_lock(fd: int, timeout: float, path: Path, tlock: threading.Lock | None = None,
                        held: bool = False) -> None:
    """Take the write lock of ``fd`` within ``timeout`` seconds, else Busy.

    The caller's attempt without blocking failed. ``tlock`` is the handle's
    thread lock: when not yet ``held`` it is acquired first, inside the same
    bound; either way it is released again if the write lock is not obtained.
    Polling starts with yields (another writer holds the lock for
    microseconds) and backs off to 5 ms sleeps (a stopped or slow holder).
    """
    deadline = time.monotonic() + timeout
    if tlock is None:
        _poll(fd, deadline, path, timeout)
        return
    if not held and not tlock.acquire(timeout=timeout):
        raise busy_error(path, timeout) from None
    try:
        _poll(fd, deadline, path, timeout)
    except BaseException:
        tlock.release()
        raise


_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def _poll(fd: int, deadline: float, path: Path, timeout: float) -> None:
    spins = 0
    pause = 0.0001
    while True:
        try:
            flock(fd, LOCK_EX_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise busy_error(path, timeout) from None
        if spins < 50:
            spins += 1
            _yield()
            continue
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, 0.005)


def busy_error(path: Path, timeout: float) -> BusyError:
    pid = holder_pid(path)
    waited = f"{timeout:g} s"
    if pid is None:
        who = "another process holds its write lock"
        hint = ("retry later; if a writer is stopped (Ctrl-Z), resume it; "
                f"set {ENV_VAR} (seconds) to wait longer")
    else:
        who = f"process {pid}{_describe(pid)} holds its write lock"
        hint = (f"process {pid} holds the lock; if it is stopped (Ctrl-Z), resume it (`fg`, or "
                f"`kill -CONT {pid}`); retry later, or set {ENV_VAR} (seconds) to wait longer")
    return BusyError(f"pool is busy: {who} (waited {waited}): {path}", str(path), hint=hint)


def _describe(pid: int) -> str:
    """`` (pls, stopped)`` from /proc when readable, else empty."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
    return f" ({name}, stopped)" if state in ("T", "t") else f" ({name})"


def holder_pid(path: str | Path) -> int | None:
    """PID of the process holding a ``flock`` on ``path``, from /proc/locks."""
    try:
        st = os.stat(path)
        with open("/proc/locks", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    for line in text.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF"; waiters have "->"
        if len(parts) < 6 or parts[1] == "->" or parts[1] != "FLOCK":
            continue
        try:
            maj, mnr, ino = parts[5].split(":")
            if int(ino) == st.st_ino and (int(maj, 16), int(mnr, 16)) == dev:
                pid = int(parts[4])
                return pid if pid > 0 else None
        except ValueError:
            continue
    return None


# ------------------------------------------------------------- admin lock
@contextlib.contextmanager
def admin_lock(directory: Path, timeout: float) -> Iterator[bool]:
    """Hold the pool directory's admin lock within ``timeout`` seconds, else Busy.

    Yields True when held; False when the directory does not exist or the
    lock file cannot be created there (read-only, another user's), in which
    case the operation runs under the write lock alone.
    """
    from filelock import FileLock, Timeout

    if not os.path.isdir(directory):  # filelock would create it
        yield False
        return
    lock_path = os.path.join(directory, ADMIN_LOCK_NAME)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=timeout)
        held = True
    except Timeout:
        pid = holder_pid(lock_path)
        who = "another process" if pid is None else f"process {pid}{_describe(pid)}"
        raise BusyError(
            f"pool directory is busy: {who} is creating, deleting or repairing a pool in {directory} "
            f"(waited {timeout:g} s)",
            str(directory), hint=f"retry shortly, or set {ENV_VAR} (seconds) to wait longer",
        ) from None
    except OSError:
        held = False
    try:
        yield held
    finally:
        if held:
            lock.release()
