"""A follower survives a redis-server restart: it reconnects, resumes after its
last seq and reports a retention gap for what was trimmed meanwhile."""

from __future__ import annotations

import subprocess
import time

import pytest

from redis_support import RedisServer, require_redis
from cli_support import PLS, env_for, jsonl

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def durable_server(tmp_path):
    require_redis()
    server = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always").start()
    try:
        yield server
    finally:
        server.stop(save=False)


def test_cli_follower_resumes_across_a_restart(durable_server, tmp_path):
    from plasmite_redis import RedisClient

    ref = f"{durable_server.url}/events"
    with RedisClient(durable_server.url) as c:
        c.create_pool("events", 1 << 20).append_many([{"n": i} for i in range(1, 11)])
    follower = subprocess.Popen([*PLS, "follow", ref, "--tail", "10", "--jsonl", "--timeout", "60s"],
                                env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        durable_server.stop()  # SHUTDOWN: the follower's connection drops
        time.sleep(1.0)
        durable_server.start()
        with RedisClient(durable_server.url) as c:
            pool = c.open_pool("events")
            assert pool.bounds() == (1, 10)  # AOF kept everything
            for i in range(11, 31):
                pool.append({"n": i})
        deadline = time.monotonic() + 60
        out = b""
        import os
        import select

        fd = follower.stdout.fileno()
        while out.count(b"\n") < 30 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out += chunk
    finally:
        follower.kill()
        _, err = follower.communicate(timeout=30)
    seqs = [m["seq"] for m in jsonl(out.decode())]
    assert seqs == list(range(1, 31)), err.decode()[-2000:]


def test_stream_reports_a_gap_for_what_was_trimmed_while_it_was_away(durable_server):
    from plasmite_redis import RedisClient

    with RedisClient(durable_server.url) as c:
        pool = c.create_pool("small", 1 << 20, max_messages=5)
        pool.append_many([{"n": 1}, {"n": 2}, {"n": 3}])
        gaps = []
        stream = pool.open_stream(since_seq=1, on_gap=lambda first, resumed: gaps.append((first, resumed)))
        assert [stream.next(5000).seq for _ in range(3)] == [1, 2, 3]
        durable_server.stop()
        durable_server.start()
        with RedisClient(durable_server.url) as writer:
            writer.open_pool("small").append_many([{"n": i} for i in range(4, 21)])  # 4..15 trimmed
        m = stream.next(30000)  # the first read fails on the dead connection, then reconnects
        assert m is not None and m.seq == 16 and gaps == [(4, 16)]


def test_follower_gives_up_with_io_after_reconnect_window(durable_server):
    from plasmite_redis import RedisClient

    with RedisClient(durable_server.url + "?reconnect_s=2") as c:
        pool = c.create_pool("gone", 4096)
        stream = pool.open_stream(last=0)
        durable_server.stop()
        start = time.monotonic()
        with pytest.raises(Exception) as exc:
            stream.next(60000)
        assert exc.value.kind.label == "Io" and "gave up reconnecting" in exc.value.message
        assert time.monotonic() - start < 30
