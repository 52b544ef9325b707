"""RemoteClient / RemotePool / RemoteTail (sync and asyncio), the http transport, remote followers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time

import pytest

from plasmite_core.errors import (
    AlreadyExistsError,
    ErrorKind,
    NotFoundError,
    PlasmiteError,
    RetentionGapError,
    UsageError,
)
from plasmite_serve.client import AsyncRemoteClient, RemoteClient, RemoteError
from plasmite_serve.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-client")
    with ServerProcess(d) as s:
        yield s


@pytest.fixture
def client(server):
    with RemoteClient(server.base_url) as c:
        yield c


def fresh(client, name):
    try:
        client.delete_pool(name)
    except NotFoundError:
        pass
    return client.create_pool(name)


def test_lifecycle_and_errors_keep_their_kind(client):
    pool = fresh(client, "life")
    assert pool.name == "life" and pool.url.endswith("/life")
    with pytest.raises(AlreadyExistsError) as dup:
        client.create_pool("life")
    assert isinstance(dup.value, RemoteError) and isinstance(dup.value, PlasmiteError)
    assert dup.value.status == 409 and dup.value.kind == ErrorKind.ALREADY_EXISTS
    with pytest.raises(NotFoundError) as missing:
        client.open_pool("ghost")
    assert missing.value.status == 404 and missing.value.hint
    with pytest.raises(UsageError):
        client.open_pool("/etc/passwd")
    assert "life" in [p.name for p in client.list_pools()]
    info = client.pool_info("life")
    assert info.name == "life" and info.file_size == 1024 * 1024 and info.newest_seq is None
    assert client.pool("life").name == "life"  # open-or-create opens
    assert client.pool("made").name == "made"  # ...or creates
    client.delete_pool("made")
    with pytest.raises(NotFoundError):
        client.pool_info("made")


def test_append_get_and_receipts(client):
    pool = fresh(client, "msgs")
    m = pool.append({"n": 1}, ["a"])
    assert m.seq == 1 and m.data == {"n": 1} and m.tags == ["a"]
    raw = pool.append_json(b'{"n": 2}', ["b"])
    assert json.loads(raw)["data"] == {"n": 2}
    got = pool.get(1)
    assert got.seq == 1 and got.data == {"n": 1} and got.time_ns == m.time_ns
    assert json.loads(pool.get_json(2))["meta"]["tags"] == ["b"]
    with pytest.raises(NotFoundError) as nf:
        pool.get(50)
    assert nf.value.seq == 50
    with pytest.raises(RemoteError) as bad:
        pool.append_json(b"{oops")
    assert bad.value.kind == ErrorKind.USAGE and bad.value.status == 400
    assert pool.bounds() == (1, 2)
    msgs = pool.append_many([{"i": i} for i in range(300)], tags=["bulk"])
    assert [x.seq for x in msgs] == list(range(3, 303))
    assert pool.get(302).data == {"i": 299} and pool.get(302).tags == ["bulk"]


def test_append_many_stops_at_first_error(client):
    pool = fresh(client, "partial")
    client.delete_pool("partial")
    with pytest.raises(NotFoundError):
        pool.append_many([{"i": 1}, {"i": 2}])
    # The shared connection is still in step afterwards.
    fresh(client, "partial").append({"ok": True})
    assert client.pool_info("partial").newest_seq == 1


def test_append_many_reports_what_was_stored(tmp_path):
    with ServerProcess(tmp_path, "--max-body-bytes", "300") as s:
        pool = RemoteClient(s.base_url).create_pool("mixed")
        values = [{"i": 0}, {"i": 1, "pad": "x" * 400}, {"i": 2}]
        with pytest.raises(RemoteError) as err:
            pool.append_many(values)
        assert err.value.status == 413
        assert [m.data["i"] for m in err.value.stored] == [0, 2]
        assert pool.bounds() == (1, 2)


def test_stream_surface_matches_local(client):
    pool = fresh(client, "stream")
    pool.append_many([{"i": i} for i in range(10)], tags=None)
    pool.append({"i": 10}, ["x"])
    s = pool.open_stream(since_seq=3, max_messages=4)
    assert [json.loads(raw)["seq"] for raw in s] == [3, 4, 5, 6]
    assert [m.data["i"] for m in pool.tail(since_seq=1, tags=["x"], timeout_ms=300)] == [10]
    last = pool.open_stream(last=2, timeout_ms=300)
    assert [m.seq for m in last.messages()] == [10, 11]
    live = pool.open_stream(last=0, timeout_ms=300)
    assert live.next() is None and live.timed_out
    with pytest.raises(UsageError):
        pool.open_stream(since_time_ns=1)
    per_call = pool.open_stream(since_seq=12)
    started = time.monotonic()
    assert per_call.next_json(timeout_ms=200) is None and not per_call.timed_out
    assert 0.15 < time.monotonic() - started < 5
    pool.append({"i": 11})
    assert per_call.next(timeout_ms=5000).data == {"i": 11}
    per_call.close()


def test_remote_follower_receives_live_appends(server, client):
    pool = fresh(client, "live")
    follower = pool.open_stream(last=0, timeout_ms=20000)
    got = []

    def writer():
        w = RemoteClient(server.base_url).open_pool("live")
        for i in range(50):
            w.append({"i": i})
            time.sleep(0.005)

    t = threading.Thread(target=writer)
    t.start()
    while len(got) < 50:
        m = follower.next()
        assert m is not None, "follower ended before receiving every live append"
        got.append(m.data["i"])
    t.join()
    follower.close()
    assert got == list(range(50))


def test_follow_reconnects_without_duplicates_when_server_ends_streams(tmp_path):
    """The server ends every tail after 300 ms; the client resumes by since_seq and never repeats a seq."""
    with ServerProcess(tmp_path, "--max-tail-timeout-ms", "300") as s:
        c = RemoteClient(s.base_url)
        pool = c.create_pool("resume")
        pool.append({"i": -1})
        follower = pool.open_stream(since_seq=1, timeout_ms=4000)  # longer than the server's cap
        seen = []

        def writer():
            for i in range(12):
                pool2 = RemoteClient(s.base_url).open_pool("resume")
                pool2.append({"i": i})
                time.sleep(0.1)

        t = threading.Thread(target=writer)
        t.start()
        while True:
            m = follower.next()
            if m is None:
                break
            seen.append(m.seq)
            if len(seen) == 13:
                break
        t.join()
        assert seen == list(range(1, 14))
        assert follower.position == 14


def test_follow_survives_a_server_restart(tmp_path):
    s = ServerProcess(tmp_path).start()
    try:
        c = RemoteClient(s.base_url)
        pool = c.create_pool("restart")
        pool.append({"before": 1})
        follower = pool.open_stream(since_seq=1)
        assert follower.next(timeout_ms=5000).data == {"before": 1}
        port = s.port
        s.stop()
        s2 = ServerProcess(tmp_path, bind=f"127.0.0.1:{port}").start()
        try:
            RemoteClient(s2.base_url).open_pool("restart").append({"after": 2})
            m = follower.next(timeout_ms=15000)
            assert m is not None and m.data == {"after": 2} and m.seq == 2
            assert follower.next(timeout_ms=200) is None  # nothing repeated
        finally:
            s2.stop()
    finally:
        s.stop()


def test_kept_alive_connection_closed_by_the_server_is_replaced(tmp_path):
    """An append after the server dropped the idle connection is sent on a new one (never lost, never doubled)."""
    s = ServerProcess(tmp_path).start()
    port = s.port
    c = RemoteClient(s.base_url)
    c.create_pool("ka").append({"n": 1})
    s.stop()
    s2 = ServerProcess(tmp_path, bind=f"127.0.0.1:{port}").start()
    try:
        time.sleep(0.6)  # idle long enough that the client checks the connection before reuse
        assert c.open_pool("ka").append({"n": 2}).seq == 2
        assert c.pool_info("ka").newest_seq == 2

        async def main():
            ac = AsyncRemoteClient(s2.base_url)
            await (await ac.open_pool("ka")).append({"n": 3})
            await ac.aclose()

        asyncio.run(main())
        assert c.pool_info("ka").newest_seq == 3
    finally:
        s2.stop()


def test_terminal_error_line_raises_remote_gap(server, client):
    """gap_policy=error on an overwritten seq: 410 before the stream starts, raised as RetentionGapError."""
    from plasmite import Client

    fresh(client, "gapped")
    client.delete_pool("gapped")
    client.create_pool("gapped", 64 * 1024)
    with Client(server.pool_dir) as local, local.open_pool("gapped") as lp:
        lp.append_many([{"pad": "z" * 200}] * 2000)
    pool = client.open_pool("gapped")
    with pytest.raises(RetentionGapError) as gap:
        pool.open_stream(since_seq=1, error_on_gap=True, timeout_ms=500).next()
    assert gap.value.seq == 1 and gap.value.kind == ErrorKind.RETENTION_GAP
    oldest, _ = pool.bounds()
    gaps = []
    s = pool.open_stream(since_seq=1, max_messages=1, timeout_ms=500, on_gap=lambda a, b: gaps.append((a, b)))
    assert s.next().seq == oldest and gaps == [(1, oldest)]


def test_async_client_matches_the_sync_one(server):
    """The calls that once drifted: create_pool's guard, append_many, close, NotFound seqs."""
    async def main():
        async with AsyncRemoteClient(server.base_url) as ac:
            with pytest.raises(UsageError):
                await ac.create_pool("aio-guard", codec="msgpack")
            with pytest.raises(UsageError):
                await ac.create_pool("aio-guard", index_capacity=16)
            with pytest.raises(NotFoundError):
                await ac.open_pool("aio-guard")  # the guard ran before anything was created
            pool = await ac.pool("aio-many")
            before = (await pool.bounds())[1] or 0
            msgs = await pool.append_many([{"i": i} for i in range(150)], ["b"])  # three pipeline windows
            assert [m.seq for m in msgs] == list(range(before + 1, before + 151))
            assert (await pool.get(before + 150)).data == {"i": 149}
            with pytest.raises(NotFoundError) as missing:
                await pool.get(before + 999)
            assert missing.value.seq == before + 999
            pool.close()
            with pytest.raises(UsageError):
                await pool.append({})
            await ac.delete_pool("aio-many")
        with pytest.raises(UsageError):
            await ac.list_pools()  # closed

    asyncio.run(main())


def test_async_client(server):
    async def main():
        async with AsyncRemoteClient(server.base_url) as ac:
            try:
                await ac.delete_pool("aio")
            except NotFoundError:
                pass
            pool = await ac.create_pool("aio")
            m = await pool.append({"a": 1}, ["t"])
            assert (await pool.get(m.seq)).data == {"a": 1}
            assert (await pool.bounds()) == (1, 1)
            assert "aio" in [p.name for p in await ac.list_pools()]

            async def later():
                await asyncio.sleep(0.2)
                await pool.append({"a": 2})

            task = asyncio.create_task(later())
            got = [msg.data async for msg in pool.tail(since_seq=1, max_messages=2, timeout_ms=5000)]
            await task
            assert got == [{"a": 1}, {"a": 2}]
            raws = [raw async for raw in pool.open_stream(since_seq=2, timeout_ms=300)]
            assert [json.loads(r)["seq"] for r in raws] == [2]
            with pytest.raises(NotFoundError):
                await ac.open_pool("ghost-aio")

    asyncio.run(main())


def test_sync_pool_atail(client):
    pool = fresh(client, "atail")
    pool.append_many([{"i": i} for i in range(3)])

    async def main():
        return [m.data["i"] async for m in pool.atail(since_seq=1, max_messages=3)]

    assert asyncio.run(main()) == [0, 1, 2]


def test_transport_plugin_and_facade(server):
    from plasmite_core import plugins

    factory = plugins.transport("http")
    assert plugins.transport("https") is not None
    c = factory(server.base_url + "/viaplugin")
    pool = c.pool()  # the URL's pool is the default
    assert pool.name == "viaplugin" and pool.append({"x": 1}).seq >= 1
    import plasmite

    assert plasmite.RemoteClient is RemoteClient
    assert issubclass(plasmite.RemoteError, plasmite.PlasmiteError)


def test_bad_urls_are_usage_errors():
    for url in ["ftp://h/p", "http://", "http://h:1/a/b/c/d", "http://h:1/p/", "nourl"]:
        with pytest.raises(UsageError):
            RemoteClient(url)
    with pytest.raises(PlasmiteError) as refused:
        RemoteClient("http://127.0.0.1:9").list_pools()
    assert refused.value.kind == ErrorKind.IO and refused.value.hint


@pytest.mark.skipif(importlib.util.find_spec("plasmite_cli") is None, reason="plasmite-cli not installed")
def test_pls_feed_and_follow_remote(server, client):
    fresh(client, "clipool")
    url = f"{server.base_url}/clipool"
    pls = [sys.executable, "-m", "plasmite_cli"]
    follow = subprocess.Popen(pls + ["follow", url, "--format", "jsonl", "--timeout", "20s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let the follower connect; it only sees messages appended from now on
        fed = subprocess.run(pls + ["feed", url, '{"hello":"remote"}'], capture_output=True, text=True, timeout=60)
        assert fed.returncode == 0, fed.stderr
        line = follow.stdout.readline()
        assert json.loads(line)["data"] == {"hello": "remote"}
    finally:
        follow.terminate()
        follow.wait(10)
    fed = subprocess.run(pls + ["feed", url], input='{"n":1}\n{"n":2}\n{"n":3}\n', capture_output=True,
                         text=True, timeout=60)
    assert fed.returncode == 0, fed.stderr
    tail = subprocess.run(pls + ["follow", url, "--tail", "3", "--format", "jsonl", "--timeout", "1s"],
                          capture_output=True, text=True, timeout=60)
    assert [json.loads(x)["data"] for x in tail.stdout.splitlines()] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_ipv6_loopback(tmp_path):
    import socket

    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with ServerProcess(tmp_path, bind="[::1]:0") as s:
        assert s.base_url.startswith("http://[::1]:")
        c = RemoteClient(s.base_url)
        assert c.create_pool("v6").append({"v": 6}).seq == 1
        assert [p.name for p in c.list_pools()] == ["v6"]
