"""Temp files that pool creators leave behind when they die.

``create`` allocates a pool as ``.NAME.plasmite.PID.TID.tmp`` (``pool
import`` writes ``.NAME.plasmite.PID.import.tmp``) and links it into place;
a creator killed while allocating (a full-size file) leaves that file behind,
invisible to ``pool list`` and eating disk space. The next create
or list in the directory removes the temp files whose creator process is gone
(under the directory's admin lock), and ``pls doctor --all`` reports them.

Liveness is ``kill(pid, 0)``: it assumes the creators of a directory run on
this host, in this PID namespace (a temp file whose creator cannot be seen is
taken as abandoned).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import NamedTuple

# create: .NAME.plasmite.PID.TID.tmp; pool import: .NAME.plasmite.PID.import.tmp
_TEMP = re.compile(r"\.(?P<pool>.+\.plasmite)\.(?P<pid>\d+)\.(?:\d+|import)\.tmp")


class Leftover(NamedTuple):
    path: Path
    pool: str
    pid: int
    size: int
    creator_alive: bool

    def to_dict(self) -> dict:
        return {"path": str(self.path), "pool_file": self.pool, "pid": self.pid, "size": self.size,
                "creator_alive": self.creator_alive}


def temp_name(pool_file_name: str) -> str:
    """The temp file name this thread uses while creating ``pool_file_name``."""
    return f".{pool_file_name}.{os.getpid()}.{threading.get_ident()}.tmp"


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it; never sweep there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def find(directory: Path) -> list[Leftover]:
    """Creators' temp files in ``directory`` (alive or not), sorted by name."""
    out = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        if m is None:
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        pid = int(m["pid"])
        out.append(Leftover(Path(entry.path), m["pool"], pid, size, pid_alive(pid)))
    return out


def sweep(directory: Path) -> list[Leftover]:
    """Remove the temp files of dead creators; returns what was removed.

    Callers hold the directory's admin lock (``locks.admin_lock``)."""
    removed = []
    for item in find(directory):
        if item.creator_alive:
            continue
        try:
            os.unlink(item.path)
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to remove (permissions): doctor still reports it
        removed.append(item)
    return removed
