"""The local Python API: lifecycle, append/get, streams, gaps, errors."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import plasmite
from plasmite import (
    AlreadyExistsError,
    Client,
    CorruptError,
    Durability,
    ErrorKind,
    Message,
    NotFoundError,
    PlasmiteError,
    RetentionGapError,
    UsageError,
    parse_message,
)


def test_upstream_names_are_exported():
    for name in [
        "Client", "Pool", "Message", "MessageMeta", "Stream", "Durability", "ErrorKind", "PlasmiteError",
        "NotFoundError", "AlreadyExistsError", "BusyError", "PermissionDeniedError", "CorruptError",
        "IoError", "UsageError", "InternalError", "RetentionGapError", "DEFAULT_POOL_SIZE",
        "DEFAULT_POOL_SIZE_BYTES", "default_pool_dir", "parse_message",
    ]:
        assert hasattr(plasmite, name), name
    assert plasmite.DEFAULT_POOL_SIZE_BYTES == 1024 * 1024
    assert int(ErrorKind.RETENTION_GAP) == 9 and int(Durability.FLUSH) == 1


def test_append_get_roundtrip(client):
    pool = client.create_pool("chat")
    m = pool.append({"from": "alice", "msg": "hi"}, ["greeting"])
    assert m.seq == 1 and m.tags == ["greeting"] and m.meta.tags == ["greeting"]
    got = pool.get(1)
    assert got.data == {"from": "alice", "msg": "hi"} and got.tags == ["greeting"]
    assert got.time_ns == m.time_ns and got.time_rfc3339.endswith("Z")
    env = pool.get_json(1)
    assert env.startswith(b'{"seq":1,"time":"') and b'"meta":{"tags":["greeting"]}' in env
    parsed = parse_message(env)
    assert parsed.seq == 1 and parsed.data == got.data and parsed.time_ns == got.time_ns
    raw = pool.append_json(b'{ "a" : [1, 2] }', ["x"], Durability.FLUSH)
    assert parse_message(raw).data == {"a": [1, 2]}
    assert b'"data":{"a":[1,2]}' in raw  # stored compact


def test_seq_is_monotonic_and_time_never_goes_back(client):
    pool = client.create_pool("mono")
    msgs = [pool.append({"i": i}) for i in range(200)]
    assert [m.seq for m in msgs] == list(range(1, 201))
    times = [pool.get(i).time_ns for i in range(1, 201)]
    assert times == sorted(times)


def test_create_open_errors(client, pool_dir):
    client.create_pool("a")
    with pytest.raises(AlreadyExistsError) as e:
        client.create_pool("a")
    assert e.value.path and e.value.hint
    with pytest.raises(NotFoundError) as e:
        client.open_pool("missing")
    assert e.value.kind == ErrorKind.NOT_FOUND and e.value.path.endswith("missing.plasmite")
    with pytest.raises(UsageError):
        client.create_pool("tiny", 1000)
    with pytest.raises(UsageError):
        client.open_pool("http://example.invalid/pool")
    # create makes parent directories
    nested = pool_dir / "x" / "y" / "deep.plasmite"
    client.create_pool(str(nested)).close()
    assert nested.exists()
    # pool() opens or creates
    assert client.pool("b").append({"n": 1}).seq == 1
    assert client.pool("b").append({"n": 2}).seq == 2


def test_get_errors(client):
    pool = client.create_pool("g")
    pool.append({"x": 1})
    with pytest.raises(NotFoundError) as e:
        pool.get(42)
    assert e.value.seq == 42 and e.value.path is None
    with pytest.raises(UsageError):
        pool.get(-1)


def test_bad_input_is_usage_and_stores_nothing(client):
    pool = client.create_pool("bad")
    pool.append({"ok": True})
    with pytest.raises(UsageError):
        pool.append({"x": object()})
    with pytest.raises(UsageError):
        pool.append_json(b"{not json")
    with pytest.raises(UsageError):
        pool.append_json(b"")
    with pytest.raises(UsageError):
        pool.append(1, tags="notalist")
    with pytest.raises(UsageError):
        pool.append(1, tags=[3])
    with pytest.raises(UsageError) as e:
        pool.append("x" * (2 << 20))  # larger than the ring
    assert "ring" in e.value.message and e.value.hint
    assert pool.bounds() == (1, 1) and pool.get(1).data == {"ok": True}


def test_ring_wraps_and_retains_newest(client):
    pool = client.create_pool("wrap", 64 * 1024)
    for i in range(5000):
        pool.append({"i": i, "pad": "x" * (i % 50)})
    oldest, newest = pool.bounds()
    assert newest == 5000 and oldest > 1
    info = pool.info()
    assert info.message_count == newest - oldest + 1 and info.used_bytes <= info.ring_size
    for seq in range(oldest, newest + 1):
        assert pool.get(seq).data["i"] == seq - 1
    with pytest.raises(NotFoundError):
        pool.get(oldest - 1)


def test_small_index_falls_back_to_a_correct_scan(client):
    pool = client.create_pool("smallidx", 256 * 1024, index_capacity=16)
    for i in range(2000):
        pool.append({"i": i})
    oldest, newest = pool.bounds()
    assert pool.info().index_capacity == 16
    for seq in (oldest, oldest + 7, newest - 100, newest):
        assert pool.get(seq).data == {"i": seq - 1}


def test_append_many_batches(client):
    pool = client.create_pool("batch", 128 * 1024)
    msgs = pool.append_many([{"n": i} for i in range(3000)], tags=["b"])
    assert [m.seq for m in msgs] == list(range(1, 3001))
    oldest, newest = pool.bounds()
    assert newest == 3000
    assert [m.data["n"] for m in pool.tail(since_seq=oldest, timeout_ms=0)] == list(range(oldest - 1, 3000))
    tagged = pool.append_many_tagged([({"a": 1}, ["x"]), ({"b": 2}, None)])
    assert tagged[0].tags == ["x"] and tagged[1].tags == []
    assert pool.append_many([]) == []


def test_tail_start_positions(client):
    pool = client.create_pool("t")
    for i in range(10):
        pool.append({"i": i})
    assert [m.seq for m in pool.tail(timeout_ms=0)] == list(range(1, 11))  # from oldest
    assert [m.seq for m in pool.tail(since_seq=8, timeout_ms=0)] == [8, 9, 10]
    assert [m.seq for m in pool.tail(last=3, timeout_ms=0)] == [8, 9, 10]
    assert [m.seq for m in pool.tail(since_seq=3, max_messages=2)] == [3, 4]
    t6 = pool.get(6).time_ns
    assert [m.seq for m in pool.tail(since_time_ns=t6, timeout_ms=0)][0] == 6
    assert list(pool.tail(last=0, timeout_ms=50)) == []
    # since_seq beyond newest waits for that seq and skips those before it
    s = pool.open_stream(since_seq=12, timeout_ms=2000)
    pool.append({"n": "eleven"})
    pool.append({"n": "twelve"})
    assert s.next().data == {"n": "twelve"}


def test_tag_filter_and_where(client):
    pool = client.create_pool("tags")
    pool.append({"n": 1}, ["a"])
    pool.append({"n": 2}, ["a", "b"])
    pool.append({"n": 3}, ["b"])
    pool.append({"n": 4}, ['a"', "b"])  # a tag with a quote must not match "a"
    assert [m.data["n"] for m in pool.tail(tags=["a"], timeout_ms=0)] == [1, 2]
    assert [m.data["n"] for m in pool.tail(tags=["a", "b"], timeout_ms=0)] == [2]
    assert [m.data["n"] for m in pool.tail(where=lambda m: m.data["n"] > 2, timeout_ms=0)] == [3, 4]


def test_stream_iteration_yields_json_like_upstream(client):
    pool = client.create_pool("it")
    pool.append({"k": 1})
    with pool.open_stream(since_seq=1, max_messages=1) as s:
        items = list(s)
    assert len(items) == 1 and isinstance(items[0], bytes) and parse_message(items[0]).data == {"k": 1}


def test_timeout_ends_stream(client):
    pool = client.create_pool("to")
    s = pool.open_stream(timeout_ms=100)
    t0 = time.monotonic()
    assert s.next() is None
    assert s.timed_out and time.monotonic() - t0 >= 0.09


def test_follower_wakes_on_append_from_thread(client):
    pool = client.create_pool("wake")
    got = []

    def follow():
        with client.open_pool("wake") as p:
            for m in p.tail(last=0, max_messages=3, timeout_ms=10_000):
                got.append(m.data["i"])

    th = threading.Thread(target=follow)
    th.start()
    time.sleep(0.2)
    for i in range(3):
        pool.append({"i": i})
    th.join(10)
    assert got == [0, 1, 2]


def test_retention_gap_policies(client):
    pool = client.create_pool("gap", 64 * 1024)
    first = pool.append({"first": True}, ["keep"])
    while pool.bounds()[0] <= first.seq:
        pool.append({"fill": "y" * 100})
    oldest = pool.bounds()[0]
    gaps = []
    m = next(pool.tail(since_seq=first.seq, on_gap=lambda a, b: gaps.append((a, b))))
    assert m.seq == oldest and gaps == [(first.seq, oldest)]
    with pytest.raises(RetentionGapError) as e:
        next(pool.tail(since_seq=first.seq, tags=["keep"], error_on_gap=True, timeout_ms=100))
    assert e.value.seq == first.seq
    # without since_seq, missing history before the first message is no gap
    s = pool.open_stream(error_on_gap=True, timeout_ms=0)
    assert s.next().seq == oldest


def test_replay_keeps_relative_timing(client):
    pool = client.create_pool("rp")
    pool.append({"n": 1})
    time.sleep(0.2)
    pool.append({"n": 2})
    t0 = time.monotonic()
    out = list(pool.replay(speed=2.0, since_seq=1, max_messages=2))
    dt = time.monotonic() - t0
    assert [m.data["n"] for m in out] == [1, 2]
    assert 0.08 <= dt < 1.0  # ~0.1 s: 0.2 s of original spacing at 2x
    t0 = time.monotonic()
    list(pool.replay(speed=0, since_seq=1, max_messages=2))
    assert time.monotonic() - t0 < 0.08


def test_async_tail(client):
    pool = client.create_pool("aio")

    async def main():
        async def produce():
            await asyncio.sleep(0.1)
            for i in range(5):
                pool.append({"i": i})

        task = asyncio.create_task(produce())
        out = [m.data["i"] async for m in pool.atail(last=0, max_messages=5, timeout_ms=5000)]
        await task
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_pool_admin(client, pool_dir):
    client.create_pool("alpha").close()
    client.create_pool("beta", 2 << 20).close()
    infos = client.list_pools()
    assert [i.name for i in infos] == ["alpha", "beta"]
    info = client.pool_info("beta")
    d = info.to_dict()
    assert d["file_size"] == 2 << 20 and d["bounds"] == {} and d["codec"] == "json"
    assert d["metrics"]["message_count"] == 0 and os.path.isabs(d["path"])
    client.delete_pool("beta")
    assert [i.name for i in client.list_pools()] == ["alpha"]
    with pytest.raises(NotFoundError):
        client.delete_pool("beta")


def test_closed_handles_refuse_use(client):
    pool = client.create_pool("closed")
    pool.close()
    with pytest.raises(UsageError):
        pool.append({"n": 1})
    client.close()
    with pytest.raises(UsageError):
        client.open_pool("closed")


def test_read_only_pool_can_be_followed_not_written(client, pool_dir):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    pool = client.create_pool("ro")
    pool.append({"n": 1})
    pool.close()
    os.chmod(pool_dir / "ro.plasmite", 0o444)
    p = client.open_pool("ro")
    assert p.get(1).data == 1
    with pytest.raises(PlasmiteError) as e:
        p.append({"n": 2})
    assert e.value.kind == ErrorKind.PERMISSION


def test_corrupt_and_newer_pools_are_refused_clearly(client, pool_dir):
    client.create_pool("c").close()
    path = pool_dir / "c.plasmite"
    with open(path, "r+b") as f:
        f.seek(40)
        f.write(b"\xff")
    with pytest.raises(CorruptError) as e:
        client.open_pool("c")
    assert e.value.path and e.value.hint
    path.write_bytes(b"NOPE")
    with pytest.raises(CorruptError):
        client.open_pool("c")


def test_default_pool_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PLASMITE_DIR", str(tmp_path / "d"))
    c = Client()
    c.create_pool("x").close()
    assert (tmp_path / "d" / "x.plasmite").exists()


def test_message_equality_and_dict(client):
    pool = client.create_pool("eq")
    m = pool.append({"a": 1}, ["t"])
    g = pool.get(1)
    assert m == g and isinstance(g, Message)
    assert g.to_dict()["meta"] == {"tags": ["t"]}


def test_poll_json_matches_message_envelopes(client):
    pool = client.create_pool("pj", 64 * 1024)
    for i in range(300):
        pool.append({"i": i}, ["t"] if i % 2 else None)
    want = [m.raw for m in pool.tail(since_seq=1, timeout_ms=0)]
    s = pool.open_stream(since_seq=1)
    got = []
    while True:
        batch = s.poll_json(64)
        if not batch:
            break
        assert len(batch) <= 64
        got.extend(batch)
    assert got == want
    assert [parse_message(b).seq for b in got] == list(range(1, 301))


def test_poll_json_after_a_gap_follows_the_gap_rules(client):
    pool = client.create_pool("pjgap", 64 * 1024)
    first = pool.append({"first": 1})
    while pool.bounds()[0] <= first.seq:
        pool.append({"fill": "z" * 100})
    gaps = []
    s = pool.open_stream(since_seq=first.seq, on_gap=lambda a, b: gaps.append((a, b)))
    out = s.poll_json(10)
    assert gaps == [(first.seq, pool.bounds()[0])]
    assert parse_message(out[0]).seq == pool.bounds()[0]
    strict = pool.open_stream(since_seq=first.seq, error_on_gap=True)
    with pytest.raises(RetentionGapError):
        strict.poll_json(10)
