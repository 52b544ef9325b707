"""Writers killed with SIGKILL mid-append never leave readers a bad message."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from plasmite import Client, Durability
from plasmite_core.doctor import check_pool

WRITER = textwrap.dedent(
    """
    import hashlib, json, random, sys
    from plasmite import Client, Durability
    d, w = sys.argv[1], int(sys.argv[2])
    pool = Client(d).open_pool("crash")
    rnd = random.Random(w)
    i = 0
    out = sys.stdout
    while True:
        body = "x" * rnd.randint(0, 3000)
        h = hashlib.sha1(f"{w}:{i}:{body}".encode()).hexdigest()
        if rnd.random() < 0.2:
            ms = pool.append_many([{"w": w, "i": i + k, "body": body, "h": hashlib.sha1(f"{w}:{i + k}:{body}".encode()).hexdigest()} for k in range(5)])
            i += 5
            out.write(" ".join(str(m.seq) for m in ms) + "\\n")
        else:
            m = pool.append({"w": w, "i": i, "body": body, "h": h}, [f"w{w}"], Durability.FLUSH if rnd.random() < 0.05 else Durability.FAST)
            i += 1
            out.write(f"{m.seq}\\n")
        out.flush()
    """
)


def _valid(m) -> bool:
    d = m.data
    return d["h"] == hashlib.sha1(f"{d['w']}:{d['i']}:{d['body']}".encode()).hexdigest()


def test_sigkill_mid_append_leaves_only_whole_messages(pool_dir):
    rounds = int(os.environ.get("PLASMITE_CRASH_ROUNDS", "12"))
    client = Client(pool_dir)
    client.create_pool("crash", 256 * 1024).close()
    rng = random.Random(1234)
    acked: set[int] = set()
    for r in range(rounds):
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(pool_dir), str(r * 10 + w)], stdout=subprocess.PIPE, text=True)
            for w in range(3)
        ]
        for p in procs:  # wait until each writer is appending, then kill mid-stream
            first = p.stdout.readline()
            acked.update(int(x) for x in first.split())
        time.sleep(rng.random() * 0.2)
        for p in procs:
            time.sleep(rng.random() * 0.01)
            p.send_signal(signal.SIGKILL)
        for p in procs:
            out, _ = p.communicate(timeout=30)
            for line in out.splitlines():
                acked.update(int(x) for x in line.split())
        report = check_pool(pool_dir / "crash.plasmite")
        assert report.ok, report.to_dict()
        with client.open_pool("crash") as pool:
            oldest, newest = pool.bounds()
            msgs = list(pool.tail(since_seq=oldest, timeout_ms=0))
            assert [m.seq for m in msgs] == list(range(oldest, newest + 1))
            assert all(_valid(m) for m in msgs)
            # every append that returned is there unless retention overwrote it
            assert {s for s in acked if s >= oldest} <= {m.seq for m in msgs}
    with client.open_pool("crash") as pool:
        before = pool.bounds()[1]
        m = pool.append({"after": "crash"}, durability=Durability.FLUSH)
        assert m.seq == before + 1 and pool.get(m.seq).data == {"after": "crash"}
