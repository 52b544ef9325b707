"""Four writer processes and two follower processes on one Redis pool for a
bounded time: every seq is assigned exactly once and each follower sees
every seq exactly once, in order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from redis_support import redis_server_fixture, require_redis  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(600)

WRITER = r"""
import json, sys, time
from plasmite_redis import RedisClient
url, wid, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pool = RedisClient(url).open_pool("load")
seqs, end, n = [], time.monotonic() + seconds, 0
while time.monotonic() < end:
    if wid % 2:
        seqs.append(pool.append({"w": wid, "n": n}).seq); n += 1
    else:
        seqs += [m.seq for m in pool.append_many([{"w": wid, "n": n + k} for k in range(16)])]; n += 16
print(json.dumps(seqs))
"""

FOLLOWER = r"""
import json, sys
from plasmite_redis import RedisClient
pool = RedisClient(sys.argv[1]).open_pool("load")
seqs = []
gaps = []
print("ready", flush=True)
for m in pool.tail(since_seq=1, timeout_ms=120000, on_gap=lambda a, b: gaps.append((a, b))):
    if m.data.get("done"):
        break
    seqs.append(m.seq)
print(json.dumps({"seqs": seqs, "gaps": gaps}))
"""


def test_four_writers_two_followers(redis_server):
    require_redis()
    from plasmite_redis import RedisClient

    with RedisClient(redis_server.url) as c:
        pool = c.create_pool("load", 256 << 20)
        followers = [subprocess.Popen([sys.executable, "-c", FOLLOWER, redis_server.url], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for f in followers:
            assert f.stdout.readline().strip() == "ready"
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, redis_server.url, str(w), "3"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
        try:
            written = []
            for w in writers:
                out, err = w.communicate(timeout=180)
                assert w.returncode == 0, err
                written.append(json.loads(out))
            done = pool.append({"done": True}).seq
            results = []
            for f in followers:
                out, err = f.communicate(timeout=180)
                assert f.returncode == 0, err
                results.append(json.loads(out))
        finally:
            for p in writers + followers:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=30)
    everything = sorted(s for seqs in written for s in seqs)
    assert everything == list(range(1, done))  # no seq skipped or given twice
    assert all(seqs == sorted(seqs) for seqs in written)  # each writer's seqs rise
    assert len(everything) > 100
    for r in results:
        assert r["gaps"] == [] and r["seqs"] == list(range(1, done))
