"""The Lite3 byte endpoints of remote protocol v0, against a real `plasmite serve` process.

Wire checks go through the standard library's http.client (or a raw socket
where chunk sizes matter); client checks use RemoteClient / AsyncRemoteClient.
Byte identity is checked against upstream's ``plasmite_message_*`` vectors.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import struct
import threading
import time

import pytest

pytest.importorskip("plasmite_codecs.lite3")

from plasmite import Client, Lite3Frame  # noqa: E402
from plasmite_codecs import lite3  # noqa: E402
from plasmite_core.envelope import parse_rfc3339  # noqa: E402
from plasmite_core.errors import NotFoundError, PermissionDeniedError, UsageError  # noqa: E402
from plasmite_serve.client import AsyncRemoteClient, RemoteClient, RemoteError, RemotePool  # noqa: E402
from plasmite_serve.testing import ServerProcess  # noqa: E402

LITE3 = "application/x-plasmite-lite3"
HEAD = struct.Struct(">QQI")
TOKEN = "lite3-token-value"
ORIGIN = "https://app.example"


def call(server, method, path, body=None, headers=None, content_type=LITE3):
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdrs = dict(headers or {})
    if body is not None and content_type is not None:
        hdrs.setdefault("Content-Type", content_type)
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def jcall(server, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    status, hdrs, payload = call(server, method, path, data, headers, content_type="application/json")
    return status, hdrs, json.loads(payload) if payload else None


def err_of(payload: bytes) -> dict:
    return json.loads(payload)["error"]


def parse_frames(body: bytes) -> list[tuple[int, int, bytes]]:
    """Split a tail_lite3 body into (seq, time_ns, payload); every byte must belong to a frame."""
    out = []
    pos = 0
    while pos < len(body):
        assert len(body) - pos >= 20, "truncated frame header"
        seq, t, n = HEAD.unpack_from(body, pos)
        assert len(body) - pos - 20 >= n, "truncated frame payload"
        out.append((seq, t, body[pos + 20 : pos + 20 + n]))
        pos += 20 + n
    return out


def doc(tags, data) -> bytes:
    return lite3.from_json(json.dumps({"meta": {"tags": tags}, "data": data}, separators=(",", ":")).encode())


def message_vectors(shared_dir):
    out = []
    for line in (shared_dir / "vectors" / "lite3" / "vectors.jsonl").read_text().splitlines():
        v = json.loads(line)
        if v.get("name", "").startswith("plasmite_message") and v.get("lite3_hex"):
            out.append(v)
    if not out:
        pytest.skip("no plasmite_message vectors in ../shared")
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-lite3")
    with ServerProcess(d) as s:
        yield s


def create(server, name):
    assert jcall(server, "POST", "/v0/pools", {"pool": name, "size_bytes": 4 * 1024 * 1024})[0] == 200


# ------------------------------------------------------------------ endpoints


def test_append_lite3_answers_like_the_json_append(server):
    create(server, "app")
    status, hdrs, payload = call(server, "POST", "/v0/pools/app/append_lite3", doc(["a", "b"], {"x": 1, "s": "t"}))
    assert status == 200 and hdrs["content-type"] == "application/json" and hdrs["plasmite-version"] == "0"
    message = json.loads(payload)["message"]
    assert message["seq"] == 1 and message["meta"] == {"tags": ["a", "b"]} and message["data"] == {"s": "t", "x": 1}
    assert message["time"].endswith("Z")
    # The stored message is an ordinary one: the JSON get returns the same envelope.
    status, _, body = jcall(server, "GET", "/v0/pools/app/messages/1")
    assert status == 200 and body["message"] == message
    # durability=flush in the query string, as upstream's client sends it; a charset suffix is accepted.
    status, _, payload = call(server, "POST", "/v0/pools/app/append_lite3?durability=flush", doc([], {"y": 2}),
                              content_type=LITE3 + "; charset=binary")
    assert status == 200 and json.loads(payload)["message"]["seq"] == 2
    status, _, payload = call(server, "POST", "/v0/pools/app/append_lite3?durability=later", doc([], {"y": 2}))
    assert status == 400 and err_of(payload)["kind"] == "Usage"


def test_get_lite3_returns_raw_bytes_with_seq_header(server):
    create(server, "get")
    want = doc(["event"], {"hello": "world"})
    assert call(server, "POST", "/v0/pools/get/append_lite3", want)[0] == 200
    status, hdrs, payload = call(server, "GET", "/v0/pools/get/messages/1/lite3")
    assert status == 200 and payload == want
    assert hdrs["content-type"] == LITE3 and hdrs["plasmite-seq"] == "1" and hdrs["plasmite-version"] == "0"
    assert int(hdrs["content-length"]) == len(want)
    _, _, body = jcall(server, "GET", "/v0/pools/get/messages/1")
    assert int(hdrs["plasmite-time-ns"]) == parse_rfc3339(body["message"]["time"])


def test_errors_have_the_right_kind_and_status(server):
    create(server, "errs")
    good = doc([], {"a": 1})
    cases = [
        (b"\x06garbage", LITE3),  # not a Lite3 document
        (b"", LITE3),  # empty body
        (lite3.from_json(b'{"data":{"a":1}}'), LITE3),  # no meta
        (lite3.from_json(b'{"meta":{"tags":[1]},"data":{}}'), LITE3),  # tags not strings
        (lite3.from_json(b'{"meta":{"tags":[]},"data":1}'), LITE3),  # data not an object
        (lite3.from_json(b'[1,2]'), LITE3),  # root not an object
        (good[:-40], LITE3),  # truncated
    ]
    for body, ctype in cases:
        status, hdrs, payload = call(server, "POST", "/v0/pools/errs/append_lite3", body, content_type=ctype)
        assert status == 400, (body[:20], ctype)
        err = err_of(payload)
        assert err["kind"] == "Usage" and err["message"] and hdrs["content-type"] == "application/json"
    # Another (or no) content type is refused before the body is read: 415.
    for ctype in ("application/json", "text/plain", "application/x-www-form-urlencoded", None):
        status, _, payload = call(server, "POST", "/v0/pools/errs/append_lite3", good, content_type=ctype)
        assert status == 415 and err_of(payload)["kind"] == "Usage", ctype
    _, _, info = jcall(server, "GET", "/v0/pools/errs/info")
    assert info["pool"]["bounds"] == {}  # nothing was stored

    for method, path, body in (
        ("POST", "/v0/pools/ghost/append_lite3", good),
        ("GET", "/v0/pools/ghost/messages/1/lite3", None),
        ("GET", "/v0/pools/ghost/tail_lite3?timeout_ms=10", None),
    ):
        status, _, payload = call(server, method, path, body)
        assert status == 404 and err_of(payload)["kind"] == "NotFound", path
    status, _, payload = call(server, "GET", "/v0/pools/errs/messages/7/lite3")
    assert status == 404 and err_of(payload)["kind"] == "NotFound" and err_of(payload)["seq"] == 7
    status, _, payload = call(server, "GET", "/v0/pools/errs/messages/x/lite3")
    assert status == 400 and err_of(payload)["kind"] == "Usage"
    status, hdrs, _ = call(server, "GET", "/v0/pools/errs/append_lite3")
    assert status == 405 and hdrs["allow"] == "POST"
    status, _, _ = call(server, "POST", "/v0/pools/errs/tail_lite3", good)
    assert status == 405
    status, _, payload = call(server, "POST", "/v0/pools/a%2Fb/append_lite3", good)
    assert status == 400 and err_of(payload)["kind"] == "Usage"


def test_tail_lite3_frames_and_query(server):
    create(server, "tl")
    for i in range(6):
        jcall(server, "POST", "/v0/pools/tl/append", {"data": {"i": i}, "tags": ["odd"] if i % 2 else ["even"]})
    status, hdrs, body = call(server, "GET", "/v0/pools/tl/tail_lite3?timeout_ms=200")
    assert status == 200 and hdrs["content-type"] == "application/x-plasmite-lite3-stream"
    assert hdrs["plasmite-version"] == "0"
    frames = parse_frames(body)
    assert [f[0] for f in frames] == [1, 2, 3, 4, 5, 6]
    for seq, t, payload in frames:
        _, _, m = jcall(server, "GET", f"/v0/pools/tl/messages/{seq}")
        assert t == parse_rfc3339(m["message"]["time"])
        assert json.loads(lite3.to_json(payload)) == {"meta": m["message"]["meta"], "data": m["message"]["data"]}
        assert payload == call(server, "GET", f"/v0/pools/tl/messages/{seq}/lite3")[2]

    _, _, body = call(server, "GET", "/v0/pools/tl/tail_lite3?since_seq=3&max=2")
    assert [f[0] for f in parse_frames(body)] == [3, 4]
    _, _, body = call(server, "GET", "/v0/pools/tl/tail_lite3?tag=odd&timeout_ms=200")
    assert [f[0] for f in parse_frames(body)] == [2, 4, 6]
    _, _, body = call(server, "GET", "/v0/pools/tl/tail_lite3?since_seq=2&gap_policy=continue&timeout_ms=100")
    assert [f[0] for f in parse_frames(body)] == [2, 3, 4, 5, 6]
    _, _, body = call(server, "GET", "/v0/pools/tl/tail_lite3?since_seq=99&timeout_ms=100")
    assert body == b""

    status, _, payload = call(server, "GET", "/v0/pools/tl/tail_lite3?gap_policy=error")
    assert status == 400 and err_of(payload)["kind"] == "Usage" and "gap_policy" in err_of(payload)["message"]
    for query in ("gap_policy=sometimes", "max=-1", "since_seq=x", "timeout_ms=99999999"):
        status, _, payload = call(server, "GET", "/v0/pools/tl/tail_lite3?" + query)
        assert status == 400 and err_of(payload)["kind"] == "Usage", query


def test_tail_lite3_writes_large_batches(server):
    """A caught-up reader gets many frames per write, not one chunk per message."""
    create(server, "big")
    with Client(server.pool_dir) as c, c.open_pool("big") as pool:
        pool.append_many([{"i": i, "name": "sensor", "ok": True} for i in range(3000)], tags=["t"])
    host, port = server.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"GET /v0/pools/big/tail_lite3?max=3000 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    raw = b""
    while True:
        data = sock.recv(1 << 16)
        if not data:
            break
        raw += data
    sock.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower()
    sizes = []
    body = b""
    while True:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            break
        sizes.append(n)
        body += rest[:n]
        rest = rest[n + 2:]
    frames = parse_frames(body)
    assert [f[0] for f in frames] == list(range(1, 3001))
    assert len(sizes) <= 3000 // 64  # at least 64 frames per write on average
    assert max(sizes) >= 64 * (20 + len(frames[0][2]))


# ------------------------------------------------------------- byte identity


def test_message_vectors_are_byte_identical_over_http(server, shared_dir):
    vectors = message_vectors(shared_dir)
    create(server, "vec")
    seqs = []
    for v in vectors:
        want = bytes.fromhex(v["lite3_hex"])
        status, _, payload = call(server, "POST", "/v0/pools/vec/append_lite3", want)
        assert status == 200, v["name"]
        seq = json.loads(payload)["message"]["seq"]
        seqs.append(seq)
        assert call(server, "GET", f"/v0/pools/vec/messages/{seq}/lite3")[2] == want, v["name"]
        # The same message appended as JSON has the same Lite3 form.
        src = json.loads(v["json"])
        status, _, out = jcall(server, "POST", "/v0/pools/vec/append", {"data": src["data"], "tags": src["meta"]["tags"]})
        assert call(server, "GET", f"/v0/pools/vec/messages/{out['message']['seq']}/lite3")[2] == want, v["name"]
    _, _, body = call(server, "GET", "/v0/pools/vec/tail_lite3?max=%d" % (2 * len(vectors)))
    frames = parse_frames(body)
    assert [f[2] for f in frames] == [bytes.fromhex(v["lite3_hex"]) for v in vectors for _ in (0, 1)]


@pytest.mark.parametrize("codec", ["lite3", "msgpack"])
def test_vectors_identical_whatever_the_pool_codec(server, shared_dir, codec):
    vectors = message_vectors(shared_dir)
    with Client(server.pool_dir) as c:
        c.create_pool(f"vec-{codec}", 4 * 1024 * 1024, codec=codec).close()
    for v in vectors:
        want = bytes.fromhex(v["lite3_hex"])
        status, _, payload = call(server, "POST", f"/v0/pools/vec-{codec}/append_lite3", want)
        assert status == 200, v["name"]
        seq = json.loads(payload)["message"]["seq"]
        assert call(server, "GET", f"/v0/pools/vec-{codec}/messages/{seq}/lite3")[2] == want, v["name"]
    _, _, body = call(server, "GET", f"/v0/pools/vec-{codec}/tail_lite3?max={len(vectors)}")
    assert [f[2] for f in parse_frames(body)] == [bytes.fromhex(v["lite3_hex"]) for v in vectors]


# --------------------------------------------------- auth, access, limits, CORS


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-lite3-auth")
    (d / "token").write_text(TOKEN + "\n")
    with ServerProcess(d / "pools", "--token-file", str(d / "token"), "--cors-origin", ORIGIN) as s:
        yield s


def test_auth_and_cors_cover_the_lite3_endpoints(authed):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert jcall(authed, "POST", "/v0/pools", {"pool": "sec"}, headers=bearer)[0] == 200
    body = doc(["s"], {"k": "v"})
    for method, path, data in (
        ("POST", "/v0/pools/sec/append_lite3", body),
        ("GET", "/v0/pools/sec/messages/1/lite3", None),
        ("GET", "/v0/pools/sec/tail_lite3?timeout_ms=10", None),
    ):
        for hdrs in ({}, {"Authorization": "Bearer wrong"}):
            status, _, payload = call(authed, method, path, data, headers=hdrs)
            assert status == 401 and err_of(payload)["kind"] == "Permission", (path, hdrs)
    status, _, _ = call(authed, "POST", "/v0/pools/sec/append_lite3", body, headers=bearer)
    assert status == 200
    status, hdrs, payload = call(authed, "GET", "/v0/pools/sec/messages/1/lite3", headers={**bearer, "Origin": ORIGIN})
    assert status == 200 and payload == body
    assert hdrs["access-control-allow-origin"] == ORIGIN
    assert "plasmite-seq" in hdrs["access-control-expose-headers"]
    status, hdrs, payload = call(authed, "GET", "/v0/pools/sec/tail_lite3?timeout_ms=50",
                                 headers={**bearer, "Origin": "https://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in hdrs
    assert [f[2] for f in parse_frames(payload)] == [body]
    # The client passes the token.
    with RemoteClient(authed.base_url, token=TOKEN) as rc:
        pool = rc.open_pool("sec")
        assert pool.get_lite3(1).payload == body
    with RemoteClient(authed.base_url, token="wrong") as rc:
        with pytest.raises(PermissionDeniedError):
            RemotePool(rc, "sec").get_lite3(1)


def test_access_modes(tmp_path):
    body = doc([], {"a": 1})
    with ServerProcess(tmp_path / "ro", "--access", "read-only") as ro:
        with Client(ro.pool_dir) as c, c.create_pool("p") as pool:
            pool.append({"a": 1})
        status, _, payload = call(ro, "POST", "/v0/pools/p/append_lite3", body)
        assert status == 403 and err_of(payload)["kind"] == "Permission"
        assert call(ro, "GET", "/v0/pools/p/messages/1/lite3")[2] == body
        assert [f[2] for f in parse_frames(call(ro, "GET", "/v0/pools/p/tail_lite3?timeout_ms=50")[2])] == [body]
    with ServerProcess(tmp_path / "wo", "--access", "write-only") as wo:
        assert jcall(wo, "POST", "/v0/pools", {"pool": "p"})[0] == 200
        status, _, payload = call(wo, "POST", "/v0/pools/p/append_lite3", body)
        assert status == 200 and json.loads(payload)["message"]["seq"] == 1
        for path in ("/v0/pools/p/messages/1/lite3", "/v0/pools/p/tail_lite3?timeout_ms=10"):
            status, _, payload = call(wo, "GET", path)
            assert status == 403 and err_of(payload)["kind"] == "Permission", path


def test_body_and_tail_limits_apply_to_lite3(tmp_path):
    with ServerProcess(tmp_path, "--max-body-bytes", "1000", "--max-tail-concurrency", "1",
                       "--max-tail-timeout-ms", "5000") as s:
        assert jcall(s, "POST", "/v0/pools", {"pool": "lim"})[0] == 200
        small = doc([], {"a": 1})
        big = doc([], {"a": "x" * 2000})
        assert len(small) <= 1000 < len(big)
        assert call(s, "POST", "/v0/pools/lim/append_lite3", small)[0] == 200
        status, _, payload = call(s, "POST", "/v0/pools/lim/append_lite3", big)
        assert status == 413 and err_of(payload)["kind"] == "Usage"
        status, _, payload = call(s, "GET", "/v0/pools/lim/tail_lite3?timeout_ms=6000")
        assert status == 400 and err_of(payload)["kind"] == "Usage"
        # One tail open (of either kind) uses the only slot: the next one is Busy.
        host, port = s.address.rsplit(":", 1)
        held = socket.create_connection((host, int(port)), timeout=10)
        held.sendall(b"GET /v0/pools/lim/tail_lite3?timeout_ms=4000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert held.recv(4096).startswith(b"HTTP/1.1 200")
        try:
            for path in ("/v0/pools/lim/tail_lite3?timeout_ms=10", "/v0/pools/lim/tail?timeout_ms=10"):
                status, _, payload = call(s, "GET", path)
                assert status == 423 and err_of(payload)["kind"] == "Busy", path
        finally:
            held.close()
        deadline = time.monotonic() + 10
        while call(s, "GET", "/v0/pools/lim/tail_lite3?timeout_ms=10")[0] != 200:
            assert time.monotonic() < deadline, "the tail slot was not released after the client left"
            time.sleep(0.05)


# --------------------------------------------------------------------- client


def test_client_round_trip(server):
    rc = RemoteClient(server.base_url)
    pool = rc.create_pool("rt")
    payload = doc(["a"], {"n": 1})
    assert pool.append_lite3(payload) == 1
    assert pool.append_lite3(bytearray(doc([], {"n": 2})), durability=1) == 2
    frame = pool.get_lite3(1)
    assert isinstance(frame, Lite3Frame) and frame.seq == 1 and frame.flags == 0 and frame.payload == payload
    assert frame.timestamp_ns == pool.get(1).time_ns
    pool.append({"n": 3}, ["a"])
    frames = list(pool.tail_lite3(since_seq=1, max_messages=3))
    assert [f.seq for f in frames] == [1, 2, 3] and frames[0] == frame
    assert json.loads(lite3.to_json(frames[2].payload)) == {"meta": {"tags": ["a"]}, "data": {"n": 3}}
    assert [f.seq for f in pool.tail_lite3(since_seq=1, timeout_ms=200, tags=["a"])] == [1, 3]
    with pool.open_lite3_stream(last=1, timeout_ms=200) as stream:
        assert [f.seq for f in stream] == [3]
        assert stream.timed_out

    with pytest.raises(UsageError) as e:
        pool.append_lite3(b"\x06not lite3")
    assert isinstance(e.value, RemoteError) and e.value.status == 400
    with pytest.raises(UsageError):
        pool.append_lite3(b"")
    with pytest.raises(NotFoundError) as e:
        pool.get_lite3(99)
    assert e.value.status == 404 and e.value.seq == 99
    with pytest.raises(UsageError):
        pool.open_lite3_stream(error_on_gap=True)
    ghost = type(pool)(rc, "ghost")
    with pytest.raises(NotFoundError):
        ghost.append_lite3(payload)
    with pytest.raises(NotFoundError):
        ghost.open_lite3_stream(timeout_ms=10)
    rc.close()


def test_async_client_round_trip(server):
    async def main():
        async with AsyncRemoteClient(server.base_url) as ac:
            pool = await ac.create_pool("art")
            payload = doc(["x"], {"v": [1, 2]})
            assert await pool.append_lite3(payload) == 1
            frame = await pool.get_lite3(1)
            assert frame.payload == payload and frame.timestamp_ns == (await pool.get(1)).time_ns
            await pool.append({"v": 3})
            got = [f async for f in pool.tail_lite3(since_seq=1, max_messages=2)]
            assert [f.seq for f in got] == [1, 2] and got[0] == frame
            stream = pool.open_lite3_stream(since_seq=2, timeout_ms=200)
            assert (await stream.next()).seq == 2
            assert await stream.next() is None and stream.timed_out
            await stream.aclose()
            with pytest.raises(UsageError):
                await pool.append_lite3(b"junk")
            with pytest.raises(NotFoundError):
                await pool.get_lite3(42)
            with pytest.raises(UsageError):
                pool.open_lite3_stream(error_on_gap=True)

    asyncio.run(main())


def test_live_remote_lite3_follower(server):
    rc = RemoteClient(server.base_url)
    pool = rc.create_pool("live")
    pool.append({"before": True})
    stream = pool.open_lite3_stream(last=0, timeout_ms=10_000)
    sent = [doc(["live"], {"i": i}) for i in range(50)]

    def writer():
        with RemoteClient(server.base_url) as wc:
            wp = wc.open_pool("live")
            for body in sent:
                wp.append_lite3(body)
                time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    got = []
    while len(got) < len(sent):
        frame = stream.next(timeout_ms=5000)
        assert frame is not None, f"follower stalled after {len(got)} frames"
        got.append(frame)
    t.join()
    stream.close()
    assert [f.seq for f in got] == list(range(2, 52))  # live only: not the message before it opened
    assert [f.payload for f in got] == sent
    assert all(a.timestamp_ns <= b.timestamp_ns for a, b in zip(got, got[1:]))


def test_lite3_follow_resumes_without_duplicates(tmp_path):
    """The server ends each stream at its tail timeout; the client reconnects with since_seq."""
    with ServerProcess(tmp_path, "--max-tail-timeout-ms", "200") as s:
        rc = RemoteClient(s.base_url)
        pool = rc.create_pool("re")
        stream = pool.open_lite3_stream(since_seq=1, timeout_ms=3000)
        got = []

        def writer():
            with RemoteClient(s.base_url) as wc:
                wp = wc.open_pool("re")
                for i in range(20):
                    wp.append_lite3(doc([], {"i": i}))
                    time.sleep(0.05)  # spans several 200 ms server streams

        t = threading.Thread(target=writer)
        t.start()
        while len(got) < 20:
            frame = stream.next(timeout_ms=3000)
            assert frame is not None
            got.append(frame.seq)
        t.join()
        stream.close()
        assert got == list(range(1, 21))
