"""SQLite as a queue: stdlib sqlite3, WAL, synchronous=NORMAL (no fsync per commit,
the analogue of Plasmite's durability "fast"); one INSERT+commit per message."""

from __future__ import annotations

import os
import sqlite3
import time

import msgspec

NAME = "sqlite"
LABEL = "SQLite WAL"
NOTES = {"follow": "polled every poll interval (no wake-up)"}
POLL_S = 0.0001


def available() -> str | None:
    return None


def create(workdir: str, purpose: str) -> dict:
    path = os.path.join(workdir, f"sqlite-{purpose}.db")
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    con.commit()
    con.close()
    return {"path": path, "dir": workdir}


class Handle:
    def __init__(self, spec: dict):
        self.path = spec["path"]
        self.con = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("PRAGMA busy_timeout=30000")
        self._enc = msgspec.json.encode
        self._dec = msgspec.json.decode
        self._last = 0

    def append(self, obj) -> None:
        self.con.execute("INSERT INTO q (data) VALUES (?)", (self._enc(obj),))

    def append_many(self, objs) -> None:
        enc = self._enc
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO q (data) VALUES (?)", [(enc(o),) for o in objs])
        con.execute("COMMIT")

    fill = append_many

    def read(self, n: int) -> int:
        dec = self._dec
        k = 0
        for (data,) in self.con.execute("SELECT data FROM q ORDER BY id LIMIT ?", (n,)):
            dec(data)
            k += 1
        return k

    def keys(self, n: int):
        return [r[0] for r in self.con.execute("SELECT id FROM q ORDER BY id LIMIT ?", (n,))]

    def get(self, key):
        row = self.con.execute("SELECT data FROM q WHERE id=?", (key,)).fetchone()
        return self._dec(row[0])

    def all_items(self) -> list:
        dec = self._dec
        return [dec(d) for (d,) in self.con.execute("SELECT data FROM q ORDER BY id")]

    def footprint(self) -> int:
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(
            os.path.getsize(p)
            for p in (self.path, self.path + "-wal")
            if os.path.exists(p)
        )

    def follow_start(self) -> None:
        row = self.con.execute("SELECT max(id) FROM q").fetchone()
        self._last = row[0] or 0
        self._buf = []

    def follow_next(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while not self._buf:
            rows = self.con.execute(
                "SELECT id, data FROM q WHERE id > ? ORDER BY id LIMIT 256", (self._last,)
            ).fetchall()
            if rows:
                self._last = rows[-1][0]
                self._buf = [r[1] for r in reversed(rows)]
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)
        return self._dec(self._buf.pop())

    def close(self) -> None:
        self.con.close()
