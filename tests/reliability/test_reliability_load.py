"""Concurrency and load: many writers and followers on one pool; the server under
64 concurrent tails.

Pool: 8 writer processes (single appends and batches) and 8 follower processes
(some deliberately slow) on one small pool whose ring wraps many times. Every
append gets a unique seq (the writers' seqs together are exactly 1..N), every
follower sees strictly increasing seqs, whole messages, each writer's messages
in the order it wrote them, and every seq it did not receive lies inside a
retention gap it was told about (on_gap).

Server: a real ``plasmite serve`` process with 64 concurrent HTTP tails and a
steady writer; each tail re-opens with ``since_seq`` when its stream times out
and must see every seq exactly once; no stream ends without its chunked
terminator; the server's RSS (sampled from /proc) stays flat.

CI sizes run for seconds; PLASMITE_SOAK=1 runs minutes.
"""

from __future__ import annotations

import array
import http.client
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from plasmite import Client
from plasmite_core.doctor import check_pool

from reliability_common import Budget, is_whole, payload, seconds


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _writer(path: str, w: int, secs: float, out: str) -> None:
    rnd = random.Random(w)
    seqs = array.array("Q")
    deadline = time.monotonic() + secs
    with Client(Path(path).parent) as c, c.open_pool(path) as pool:
        i = 0
        while time.monotonic() < deadline:
            if w % 2 and rnd.random() < 0.5:
                k = rnd.randint(2, 40)
                ms = pool.append_many([{**payload(f"{w}.{i + j}", rnd.randint(0, 400)), "w": w, "i": i + j}
                                       for j in range(k)], tags=[f"w{w}"])
                seqs.extend(m.seq for m in ms)
                i += k
            else:
                m = pool.append({**payload(f"{w}.{i}", rnd.randint(0, 400)), "w": w, "i": i}, [f"w{w}"])
                seqs.append(m.seq)
                i += 1
    with open(out, "wb") as fh:
        seqs.tofile(fh)


def _follower(path: str, f: int, secs: float, out: str) -> None:
    rnd = random.Random(1000 + f)
    slow = f % 4 == 3  # falls behind on purpose: must be told about every loss
    gaps: list[tuple[int, int]] = []
    got = 0
    first = last = None
    per_writer: dict[int, int] = {}
    errors: list[str] = []
    with Client(Path(path).parent) as c, c.open_pool(path) as pool:
        stream = pool.open_stream(since_seq=1, timeout_ms=int(secs * 1000), on_gap=lambda a, b: gaps.append((a, b)))
        for m in stream.messages():
            d = m.data
            if d.get("k") == "stop":
                break
            if last is not None and m.seq <= last:
                errors.append(f"seq {m.seq} after {last}")
            if not is_whole(d):
                errors.append(f"seq {m.seq} not whole")
            w, i = d["w"], d["i"]
            if per_writer.get(w, -1) >= i:
                errors.append(f"writer {w} message {i} after {per_writer[w]}")
            per_writer[w] = i
            if first is None:
                first = m.seq
            last = m.seq
            got += 1
            if slow and rnd.random() < 0.01:
                time.sleep(rnd.uniform(0.01, 0.2))
            if len(errors) > 20:
                break
    with open(out, "w") as fh:
        json.dump({"got": got, "first": first, "last": last, "gaps": gaps, "errors": errors,
                   "timed_out": stream.timed_out}, fh)


def _spawn(fn, *args) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


def _reap(pid: int, timeout: float) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} did not finish in time")


def test_8_writers_8_followers_ring_wrapping(tmp_path, figures):
    secs = seconds(6, 180)
    path = tmp_path / "load.plasmite"
    with Client(tmp_path) as c:
        c.create_pool("load", 256 * 1024).close()
    writers = [_spawn(_writer, str(path), w, secs, str(tmp_path / f"w{w}.bin")) for w in range(8)]
    followers = [_spawn(_follower, str(path), f, secs + 60, str(tmp_path / f"f{f}.json")) for f in range(8)]
    for pid in writers:
        assert _reap(pid, secs + 60) == 0
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        stop = pool.append({"k": "stop"}).seq
        ring = pool.info().ring_size
    for pid in followers:
        assert _reap(pid, 120) == 0
    # Appends: every seq 1..stop-1 went to exactly one writer call.
    all_seqs = array.array("Q")
    for w in range(8):
        a = array.array("Q")
        with open(tmp_path / f"w{w}.bin", "rb") as fh:
            a.frombytes(fh.read())
        assert list(a) == sorted(a) and len(set(a)) == len(a)
        all_seqs.extend(a)
    assert sorted(all_seqs) == list(range(1, stop)), "lost or duplicated seqs among writers"
    # Followers: ordered, whole, and every seq missed is inside a reported gap.
    total_gaps = 0
    for f in range(8):
        r = json.loads((tmp_path / f"f{f}.json").read_text())
        assert not r["errors"], r["errors"][:5]
        assert not r["timed_out"], f"follower {f} never saw the stop marker"
        missed = sum(b - a for a, b in r["gaps"])
        first_gap = r["gaps"][0][0] if r["gaps"] else None
        start = 1 if first_gap == 1 else r["first"]
        assert r["got"] + missed == r["last"] - start + 1, (f, r["got"], missed, r["first"], r["last"])
        total_gaps += len(r["gaps"])
    report = check_pool(path)
    assert report.ok, report.to_dict()
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        laps = pool._file().read_state().head / ring
    assert laps > 3, "the ring did not wrap enough to test retention"
    figures["reliability load (pool)"] = {"seconds": secs, "messages": stop - 1, "ring_laps": round(laps, 1),
                                          "gaps_reported": total_gaps}


# ---------------------------------------------------------------- the server
def _tail_worker(host: str, port: int, stop: threading.Event, state: dict, idx: int) -> None:
    """One tail that re-opens with since_seq; records every seq and any drop."""
    next_seq = 1
    seen = 0
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("GET", f"/v0/pools/srv/tail?since_seq={next_seq}&timeout_ms={state['tail_ms']}")
            resp = conn.getresponse()
            if resp.status != 200:
                state["errors"].append(f"tail {idx}: HTTP {resp.status} {resp.read()[:200]!r}")
                time.sleep(0.2)
                continue
            while True:
                line = resp.readline()
                if not line:
                    break
                m = json.loads(line)
                if m["seq"] != next_seq:
                    state["errors"].append(f"tail {idx}: seq {m['seq']} where {next_seq} was expected")
                next_seq = m["seq"] + 1
                seen += 1
            state["reopens"][idx] += 1
        except (http.client.HTTPException, OSError, ValueError) as exc:
            if not stop.is_set():
                state["errors"].append(f"tail {idx}: connection dropped: {exc!r}")
        finally:
            conn.close()
    state["seen"][idx] = seen
    state["next"][idx] = next_seq


def test_server_64_tails_steady_appends_flat_memory(tmp_path, figures):
    pytest.importorskip("plasmite_serve")
    from plasmite_serve.testing import ServerProcess

    secs = seconds(8, 60)
    tails = 64
    with ServerProcess(tmp_path / "pools") as server:
        host, port = server.address.rsplit(":", 1)
        port = int(port)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        json_type = {"Content-Type": "application/json"}
        conn.request("POST", "/v0/pools", body=json.dumps({"pool": "srv", "size_bytes": 64 * 1024 * 1024}),
                     headers=json_type)
        resp = conn.getresponse()
        created = json.loads(resp.read())
        assert resp.status == 200 and created["pool"]["file_size"] == 64 * 1024 * 1024, created
        stop = threading.Event()
        state = {"errors": [], "reopens": [0] * tails, "seen": [0] * tails, "next": [0] * tails,
                 "tail_ms": 2000 if not seconds(0, 1) else 10000}
        threads = [threading.Thread(target=_tail_worker, args=(host, port, stop, state, i), daemon=True)
                   for i in range(tails)]
        for t in threads:
            t.start()
        appended = 0
        samples = []
        budget = Budget(secs)
        warm = time.monotonic() + min(2.0, secs / 4)
        next_sample = 0.0
        while budget:
            conn.request("POST", "/v0/pools/srv/append", body=json.dumps({"data": {"i": appended, "pad": "m" * 100}}),
                         headers=json_type)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body
            appended += 1
            now = time.monotonic()
            if now >= warm and now >= next_sample:
                samples.append(_rss_kib(server.proc.pid))
                next_sample = now + max(0.25, secs / 40)
            time.sleep(0.01)
        time.sleep(0.5)  # let every tail drain the last appends
        stop.set()
        for t in threads:
            t.join(40)
        assert not any(t.is_alive() for t in threads)
        conn.close()
        assert server.proc.poll() is None, server.stderr()[-2000:]
    assert not state["errors"], state["errors"][:10]
    # every tail received every message, exactly once and in order
    assert min(state["next"]) == appended + 1, (min(state["next"]), appended)
    assert len(samples) >= 4
    half = len(samples) // 2
    early, late = max(samples[:half]), max(samples[half:])
    # Flat: the second half of the run may not grow past the first by more than
    # a slack for allocator noise (a leak per message or per re-opened stream
    # over thousands of each would exceed it).
    assert late - early < 8 * 1024, samples
    figures["reliability load (server)"] = {
        "seconds": secs, "tails": tails, "appends": appended,
        "messages_delivered": sum(state["seen"]), "stream_reopens": sum(state["reopens"]),
        "rss_kib_first": samples[0], "rss_kib_last": samples[-1], "rss_kib_max": max(samples)}
