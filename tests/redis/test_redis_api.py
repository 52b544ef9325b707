"""plasmite-redis through its Python API against a real redis-server: the
semantics of a local pool (seq, time, retention, gaps, tails, filters),
blocking follows, durability and the error kinds."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from redis_support import RedisServer, redis_server_fixture, require_redis, unique  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def client(redis_server):
    from plasmite_redis import RedisClient

    with RedisClient(redis_server.url) as c:
        yield c


def test_seq_time_and_get_by_seq(client):
    pool = client.create_pool(unique(), 1 << 20)
    msgs = [pool.append({"n": i}, ["even"] if i % 2 == 0 else None) for i in range(50)]
    msgs += pool.append_many([{"n": i} for i in range(50, 300)])
    assert [m.seq for m in msgs] == list(range(1, 301))
    times = [m.time_ns for m in msgs]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(times[0] - time.time_ns()) < 60 * 10**9  # the server's clock, in ns
    got = pool.get(123)
    assert (got.seq, got.data, got.time_ns) == (123, {"n": 122}, msgs[122].time_ns)
    assert pool.get(2).tags == [] and pool.get(1).tags == ["even"]
    assert pool.get_json(5) == msgs[4].raw
    assert pool.bounds() == (1, 300)
    with pytest.raises(Exception) as exc:
        pool.get(301)
    assert exc.value.kind.label == "NotFound" and exc.value.seq == 301


def test_append_json_and_encoded_paths(client):
    pool = client.create_pool(unique(), 1 << 20)
    env = pool.append_json(b'{ "a" : [1, 2] }', ["x"])
    assert env.endswith(b'"meta":{"tags":["x"]},"data":{"a":[1,2]}}')
    assert pool.append_encoded([(b"", b'{"n":1}'), (b'["t"]', b'{"s":1}')]) == [(2, pool.get(2).time_ns),
                                                                              (3, pool.get(3).time_ns)]
    assert pool.get(3).data == {"s": 1} and pool.get(3).tags == ["t"]
    for bad in (b"", b"{nope", b"[1]", b'"text"'):
        with pytest.raises(Exception) as exc:
            pool.append_json(bad)
        assert exc.value.kind.label == "Usage"
    with pytest.raises(Exception) as exc:
        pool.append(object())
    assert exc.value.kind.label == "Usage"
    for value in (1, "s", [1], None):
        with pytest.raises(Exception) as exc:
            pool.append(value)
        assert exc.value.kind.label == "Usage" and "JSON object" in exc.value.message
    with pytest.raises(TypeError):
        pool.append_json('{"a": 1}')
    assert pool.bounds() == (1, 3)  # nothing stored by the refused calls


def test_lifecycle_and_kinds(client, redis_server):
    name = unique()
    with pytest.raises(Exception) as exc:
        client.open_pool(name)
    assert exc.value.kind.label == "NotFound"
    client.create_pool(name, 4096)
    with pytest.raises(Exception) as exc:
        client.create_pool(name, 4096)
    assert exc.value.kind.label == "AlreadyExists"
    assert client.pool(name).name == name  # opens the existing one
    info = client.pool_info(name).to_dict()
    assert info["file_size"] == 4096 and info["bounds"] == {} and info["path"] == f"{redis_server.url}/{name}"
    assert name in [p.name for p in client.list_pools()]
    client.delete_pool(name)
    assert name not in [p.name for p in client.list_pools()]
    with pytest.raises(Exception) as exc:
        client.delete_pool(name)
    assert exc.value.kind.label == "NotFound"
    for bad in ("../x", "a/b", ""):
        with pytest.raises(Exception) as exc:
            client.create_pool(bad)
        assert exc.value.kind.label == "Usage"
    with pytest.raises(Exception) as exc:
        client.create_pool(unique(), 1024, codec="msgpack")
    assert exc.value.kind.label == "Usage"


def test_pool_deleted_under_a_writer_is_not_found(client):
    name = unique()
    pool = client.create_pool(name, 4096)
    pool.append({"n": 1})
    client.delete_pool(name)
    with pytest.raises(Exception) as exc:
        pool.append({"n": 2})
    assert exc.value.kind.label == "NotFound"


def test_retention_in_bytes_and_messages(client):
    pool = client.create_pool(unique(), 2000)
    for i in range(200):
        pool.append({"i": i})
    info = pool.info()
    assert info.newest_seq == 200 and info.used_bytes <= 2000
    assert info.message_count == 200 - info.oldest_seq + 1 and info.message_count < 60
    assert info.used_bytes > 2000 - 60  # trimmed to fit, not emptied
    kept = [m.seq for m in pool.tail(timeout_ms=0)]
    assert kept == list(range(info.oldest_seq, 201))
    counted = client.create_pool(unique(), 1 << 20, max_messages=10)
    counted.append_many([{"n": i} for i in range(25)])
    assert counted.bounds() == (16, 25)
    with pytest.raises(Exception) as exc:
        pool.append({"x": "x" * 3000})
    assert exc.value.kind.label == "Usage"
    assert pool.bounds()[1] == 200  # nothing stored by the refused append


@pytest.mark.parametrize("error_on_gap", [False, True])
def test_retention_gap_policies(client, error_on_gap):
    pool = client.create_pool(unique(), 1 << 20, max_messages=5)
    pool.append_many([{"n": i} for i in range(3)])
    gaps = []
    stream = pool.open_stream(since_seq=2, timeout_ms=2000, error_on_gap=error_on_gap,
                              on_gap=lambda first, resumed: gaps.append((first, resumed)))
    pool.append_many([{"n": i} for i in range(3, 20)])  # seqs 2..15 trimmed before they were read
    if error_on_gap:
        with pytest.raises(Exception) as exc:
            stream.next()
        assert exc.value.kind.label == "RetentionGap" and exc.value.seq == 2
        assert stream.next(0) is None  # the stream ended
    else:
        assert stream.next().seq == 16 and gaps == [(2, 16)]
        assert [m.seq for m in stream.poll()] == [17, 18, 19, 20]


def test_tails_from_seq_last_time_and_filters(client):
    pool = client.create_pool(unique(), 1 << 20)
    for i in range(1, 21):
        pool.append({"i": i, "color": "red" if i % 3 == 0 else "blue"}, ["hot"] if i % 5 == 0 else None)
    assert [m.seq for m in pool.tail(since_seq=15, timeout_ms=0)] == [15, 16, 17, 18, 19, 20]
    assert [m.seq for m in pool.tail(last=3, timeout_ms=0)] == [18, 19, 20]
    t12 = pool.get(12).time_ns
    assert [m.seq for m in pool.tail(since_time_ns=t12, timeout_ms=0)][0] == 12
    assert list(pool.tail(since_time_ns=time.time_ns() + 10**12, timeout_ms=0)) == []
    assert [m.seq for m in pool.tail(tags=["hot"], timeout_ms=0)] == [5, 10, 15, 20]
    stream = pool.open_stream(timeout_ms=0, where=lambda m: m.data["color"] == "red")
    assert [m.seq for m in stream.messages()] == [3, 6, 9, 12, 15, 18]
    assert [m.seq for m in pool.tail(max_messages=2, timeout_ms=0)] == [1, 2]
    assert [m.seq for m in pool] == list(range(1, 21))


def test_replay_keeps_spacing(client):
    pool = client.create_pool(unique(), 1 << 20)
    pool.append({"n": 1})
    time.sleep(0.3)
    pool.append({"n": 2})
    start = time.monotonic()
    assert [m.data["n"] for m in pool.replay(speed=1.0, since_seq=1, timeout_ms=0)] == [1, 2]
    assert time.monotonic() - start >= 0.25
    start = time.monotonic()
    assert [m.data["n"] for m in pool.replay(speed=0, since_seq=1, timeout_ms=0)] == [1, 2]


def _calls(server: RedisServer, command: str) -> int:
    for line in server.cli("info", "commandstats").splitlines():
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def test_follow_blocks_in_redis_without_polling(client, redis_server):
    pool = client.create_pool(unique(), 1 << 20)
    stream = pool.open_stream(last=0)
    before = _calls(redis_server, "xread")
    assert stream.next(1500) is None  # nothing arrives: one blocking read, not a loop
    assert _calls(redis_server, "xread") - before <= 2
    timer = threading.Timer(0.5, lambda: pool.append({"late": True}))
    timer.start()
    start = time.monotonic()
    m = stream.next(20000)
    assert m is not None and m.data == {"late": True}
    assert time.monotonic() - start < 15
    timer.join()


def test_async_tails_share_one_blocked_connection(client, redis_server):
    pools = [client.create_pool(unique(), 1 << 20) for _ in range(4)]

    async def one(pool, k):
        return [m.data async for m in pool.atail(last=0, max_messages=2, timeout_ms=60000)]

    async def main():
        tasks = [asyncio.create_task(one(p, k)) for p in pools for k in range(5)]
        samples = []
        for _ in range(10):
            await asyncio.sleep(0.3)
            info = await asyncio.to_thread(redis_server.cli, "info", "clients")
            samples.append(int(info.split("blocked_clients:", 1)[1].split()[0]))
        for i, p in enumerate(pools):
            await asyncio.to_thread(p.append_many, [{"v": f"{i}a"}, {"v": f"{i}b"}])
        return samples, await asyncio.gather(*tasks)

    samples, results = asyncio.run(main())
    assert max(samples) == 1, samples  # 20 async tails on 4 pools wait in one XREAD
    for i, p in enumerate(pools):
        assert results[i * 5:(i + 1) * 5] == [[{"v": f"{i}a"}, {"v": f"{i}b"}]] * 5


def test_durability_flush_waits_for_replicas(redis_server, tmp_path):
    from plasmite import Durability
    from plasmite_redis import RedisClient

    replica = RedisServer(tmp_path, "--replicaof", "127.0.0.1", str(redis_server.port)).start()
    try:
        deadline = time.monotonic() + 60
        while "master_link_status:up" not in replica.cli("info", "replication"):
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.1)
        name = unique()
        with RedisClient(redis_server.url) as c:
            m = c.create_pool(name, 1 << 20).append({"safe": 1}, durability=Durability.FLUSH)
        assert replica.cli("xrange", f"plasmite:{{{name}}}:log", "-", "+").count("safe") == 1
        with RedisClient(redis_server.url + "?replicas=2&wait_timeout_ms=200") as c:
            with pytest.raises(Exception) as exc:
                c.open_pool(name).append({"n": 2}, durability=Durability.FLUSH)
        assert exc.value.kind.label == "Io" and "1 of 2 replicas" in exc.value.message
        assert m.seq == 1
    finally:
        replica.stop(save=False)


def test_error_kinds_and_no_credentials(tmp_path):
    require_redis()
    from plasmite_redis import RedisClient

    from redis_support import free_port

    with pytest.raises(Exception) as exc:
        RedisClient(f"redis://127.0.0.1:{free_port()}/x").open_pool()
    assert exc.value.kind.label == "Io" and "redis-server running" in exc.value.hint

    secret = "s3cret-pw-XYZ"
    server = RedisServer(tmp_path, password=secret).start()
    try:
        for url in (f"redis://:wrong-{secret}@127.0.0.1:{server.port}/x", f"redis://127.0.0.1:{server.port}/x"):
            with pytest.raises(Exception) as exc:
                RedisClient(url).open_pool()
            err = exc.value
            assert err.kind.label == "Permission"
            assert secret not in f"{err.message} {err.hint} {err!r} {err.to_dict()}"
        with RedisClient(f"redis://default:{secret}@127.0.0.1:{server.port}") as c:
            pool = c.create_pool("x", 4096)
            text = f"{pool.info().to_dict()} {pool!r} {c!r} {c.url}"
            assert secret not in text and f"127.0.0.1:{server.port}/x" in pool.info().path
    finally:
        server.stop(save=False)


def test_busy_server_is_busy(client, redis_server):
    pool = client.create_pool(unique(), 4096)
    spin = threading.Thread(target=lambda: redis_server.cli("eval", "local i = 0 while true do i = i + 1 end", "0",
                                                            timeout=120), daemon=True)
    spin.start()
    try:
        time.sleep(0.5)  # past busy-reply-threshold (100 ms)
        with pytest.raises(Exception) as exc:
            pool.append({"n": 1})
        assert exc.value.kind.label == "Busy"
    finally:
        deadline = time.monotonic() + 30
        while spin.is_alive() and time.monotonic() < deadline:
            try:
                redis_server.cli("script", "kill", timeout=10)
            except Exception:
                pass
            spin.join(0.2)
    assert pool.append({"n": 2}).seq == 1


def test_missing_plugin_is_a_usage_error_naming_the_package():
    require_redis()
    from plasmite_core import plugins

    from plasmite_cli import targets

    pm = plugins.get_plugin_manager()
    pm.set_blocked("redis")
    plugins._cache.clear()
    try:
        with pytest.raises(Exception) as exc:
            targets.transport_client("redis://user:pw@127.0.0.1:1/x")
        assert exc.value.kind.label == "Usage" and "plasmite-redis" in exc.value.hint
    finally:
        plugins.reset()
