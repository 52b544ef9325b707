"""A JSON Lines file under fcntl.flock: the do-it-yourself log.  Unbounded (no
retention), no index (get by position is a scan, so it is not offered)."""

from __future__ import annotations

import fcntl
import os
import time

import msgspec

NAME = "jsonl"
LABEL = "JSONL+flock"
NOTES = {"get": "no index: a lookup is a file scan", "follow": "polled every poll interval"}
POLL_S = 0.0001


def available() -> str | None:
    return None


def create(workdir: str, purpose: str) -> dict:
    path = os.path.join(workdir, f"jsonl-{purpose}.jsonl")
    open(path, "wb").close()
    return {"path": path}


class Handle:
    def __init__(self, spec: dict):
        self.path = spec["path"]
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._enc = msgspec.json.encode
        self._dec = msgspec.json.decode
        self._rf = None

    def append(self, obj) -> None:
        line = self._enc(obj) + b"\n"
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.write(self.fd, line)
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def append_many(self, objs) -> None:
        enc = self._enc
        data = b"".join([enc(o) + b"\n" for o in objs])
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.write(self.fd, data)
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    fill = append_many

    def read(self, n: int) -> int:
        dec = self._dec
        k = 0
        with open(self.path, "rb") as f:
            for line in f:
                dec(line)
                k += 1
                if k >= n:
                    break
        return k

    def keys(self, n: int):
        return None

    get = None

    def all_items(self) -> list:
        with open(self.path, "rb") as f:
            return [self._dec(line) for line in f]

    def footprint(self) -> int:
        return os.path.getsize(self.path)

    def follow_start(self) -> None:
        self._rf = open(self.path, "rb")
        self._rf.seek(0, os.SEEK_END)
        self._partial = b""

    def follow_next(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._rf.readline()
            if line:
                line = self._partial + line
                if line.endswith(b"\n"):
                    self._partial = b""
                    return self._dec(line)
                self._partial = line
                continue
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)

    def close(self) -> None:
        os.close(self.fd)
        if self._rf:
            self._rf.close()
