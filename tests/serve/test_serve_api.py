"""Remote protocol v0 against a real `plasmite serve` process: endpoints, bodies, statuses.

Requests go through the standard library's http.client, not our own client,
so these tests check the wire itself.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from plasmite_serve.testing import ServerProcess


def call(server, method, path, body=None, headers=None, raw=None):
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdrs = dict(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def jcall(server, method, path, body=None, headers=None):
    status, hdrs, payload = call(server, method, path, body, headers)
    return status, hdrs, json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-api")
    with ServerProcess(d) as s:
        yield s


def test_healthz_and_version_header(server):
    status, hdrs, body = jcall(server, "GET", "/healthz")
    assert status == 200 and body == {"ok": True}
    assert hdrs["plasmite-version"] == "0"
    status, hdrs, body = jcall(server, "GET", "/v0/nope")
    assert status == 404 and body["error"]["kind"] == "NotFound"
    assert hdrs["plasmite-version"] == "0" and hdrs["content-type"] == "application/json"


def test_pool_lifecycle(server):
    status, _, body = jcall(server, "POST", "/v0/pools", {"pool": "life", "size_bytes": 2 * 1024 * 1024})
    assert status == 200
    pool = body["pool"]
    assert pool["name"] == "life" and pool["file_size"] == 2 * 1024 * 1024
    assert pool["bounds"] == {} and pool["metrics"]["message_count"] == 0
    for key in ("path", "index_offset", "index_capacity", "index_size_bytes", "ring_offset", "ring_size"):
        assert key in pool

    status, _, body = jcall(server, "POST", "/v0/pools", {"pool": "life"})
    assert status == 409 and body["error"]["kind"] == "AlreadyExists"

    status, _, body = jcall(server, "POST", "/v0/pools/open", {"pool": "life"})
    assert status == 200 and body["pool"]["name"] == "life"
    status, _, body = jcall(server, "POST", "/v0/pools/open", {"pool": "ghost"})
    assert status == 404 and body["error"]["kind"] == "NotFound"

    status, _, body = jcall(server, "GET", "/v0/pools")
    assert status == 200 and "life" in [p["name"] for p in body["pools"]]

    status, _, body = jcall(server, "GET", "/v0/pools/life/info")
    assert status == 200 and body["pool"]["name"] == "life"
    status, _, body = jcall(server, "GET", "/v0/pools/ghost/info")
    assert status == 404 and body["error"]["kind"] == "NotFound"

    status, _, body = jcall(server, "DELETE", "/v0/pools/life")
    assert status == 200 and body == {"ok": True}
    status, _, body = jcall(server, "DELETE", "/v0/pools/life")
    assert status == 404 and body["error"]["kind"] == "NotFound"
    status, _, body = jcall(server, "GET", "/v0/pools")
    assert "life" not in [p["name"] for p in body["pools"]]


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/v0/pools", {"pool": "/tmp/evil"}),
        ("POST", "/v0/pools", {"pool": "../evil"}),
        ("POST", "/v0/pools/open", {"pool": "/tmp/evil"}),
        ("GET", "/v0/pools/a%2Fb/info", None),
        ("DELETE", "/v0/pools/..", None),
        ("POST", "/v0/pools/a%2F..%2Fb/append", {"data": 1}),
    ],
)
def test_pool_names_only(server, method, path, body):
    status, hdrs, out = jcall(server, method, path, body)
    assert status == 400, out
    assert out["error"]["kind"] == "Usage"
    assert hdrs["plasmite-version"] == "0"


@pytest.mark.parametrize(
    "raw,fragment",
    [
        (b"{not json", "malformed JSON"),
        (b"", "body is required"),
        (b'{"size_bytes": 5}', "pool"),
        (b'{"pool": 7}', "pool"),
        (b'{"pool": "x", "size_bytes": -1}', "size_bytes"),
    ],
)
def test_create_rejects_bad_bodies(server, raw, fragment):
    status, _, payload = call(server, "POST", "/v0/pools", raw=raw, headers={"Content-Type": "application/json"})
    out = json.loads(payload)
    assert status == 400 and out["error"]["kind"] == "Usage"
    assert fragment in out["error"]["message"]


def test_append_and_get(server):
    assert jcall(server, "POST", "/v0/pools", {"pool": "msgs"})[0] == 200
    status, hdrs, body = jcall(server, "POST", "/v0/pools/msgs/append", {"data": {"n": 1}, "tags": ["a", "b"]})
    assert status == 200 and hdrs["plasmite-version"] == "0"
    msg = body["message"]
    assert msg["seq"] == 1 and msg["data"] == {"n": 1} and msg["meta"] == {"tags": ["a", "b"]}
    assert msg["time"].endswith("Z") and len(msg["time"].split(".")[1]) == 10  # 9 digits + Z
    assert list(msg) == ["seq", "time", "meta", "data"]

    status, _, body = jcall(server, "POST", "/v0/pools/msgs/append", {"data": {"list": [1, "two"]}, "durability": "flush"})
    assert status == 200 and body["message"]["seq"] == 2 and body["message"]["meta"]["tags"] == []

    status, _, body = jcall(server, "GET", "/v0/pools/msgs/messages/1")
    assert status == 200 and body["message"]["data"] == {"n": 1}
    status, _, body = jcall(server, "GET", "/v0/pools/msgs/messages/99")
    assert status == 404 and body["error"]["kind"] == "NotFound" and body["error"]["seq"] == 99
    status, _, body = jcall(server, "GET", "/v0/pools/msgs/messages/abc")
    assert status == 400 and body["error"]["kind"] == "Usage"
    status, _, body = jcall(server, "GET", "/v0/pools/ghost/messages/1")
    assert status == 404


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"tags": ["x"]}, "data"),
        ({"data": {}, "durability": "sometimes"}, "durability"),
        ({"data": {}, "tags": "notalist"}, "tags"),
        ({"data": {}, "tags": [""]}, "tags"),
        ({"data": [1, 2]}, "must be a JSON object"),
        ({"data": "text"}, "must be a JSON object"),
    ],
)
def test_append_rejects_bad_bodies(server, body, fragment):
    jcall(server, "POST", "/v0/pools", {"pool": "badappend"})
    status, _, out = jcall(server, "POST", "/v0/pools/badappend/append", body)
    assert status == 400 and out["error"]["kind"] == "Usage"
    assert fragment in out["error"]["message"]


def test_append_to_missing_pool_is_not_found(server):
    status, _, out = jcall(server, "POST", "/v0/pools/ghost/append", {"data": 1})
    assert status == 404 and out["error"]["kind"] == "NotFound"
    status, _, out = jcall(server, "POST", "/v0/pools/ghost/append", {"data": 1, "durability": "flush"})
    assert status == 404 and out["error"]["kind"] == "NotFound"


def test_wrong_methods(server):
    status, hdrs, out = jcall(server, "PUT", "/v0/pools")
    assert status == 405 and out["error"]["kind"] == "Usage" and "GET" in hdrs["allow"]
    status, _, out = jcall(server, "GET", "/v0/pools/msgs/append")
    assert status == 405


def _lines(payload: bytes) -> list[dict]:
    return [json.loads(line) for line in payload.split(b"\n") if line.strip()]


def test_tail_json_lines(server):
    jcall(server, "POST", "/v0/pools", {"pool": "tails"})
    for i in range(5):
        tags = ["even"] if i % 2 == 0 else ["odd"]
        if i == 4:
            tags.append("last")
        jcall(server, "POST", "/v0/pools/tails/append", {"data": {"i": i}, "tags": tags})

    status, hdrs, payload = call(server, "GET", "/v0/pools/tails/tail?timeout_ms=200")
    assert status == 200
    assert hdrs["content-type"] == "application/jsonl" and hdrs["plasmite-version"] == "0"
    assert [m["seq"] for m in _lines(payload)] == [1, 2, 3, 4, 5]
    assert payload.endswith(b"\n")

    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?since_seq=3&timeout_ms=200")
    assert [m["seq"] for m in _lines(payload)] == [3, 4, 5]

    started = time.monotonic()
    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?max=2")
    assert [m["seq"] for m in _lines(payload)] == [1, 2]
    assert time.monotonic() - started < 10  # ended by max, not by the 30 s default timeout

    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?tag=even&timeout_ms=200")
    assert [m["data"]["i"] for m in _lines(payload)] == [0, 2, 4]
    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?tag=even&tag=last&timeout_ms=200")
    assert [m["data"]["i"] for m in _lines(payload)] == [4]

    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?since_seq=6&timeout_ms=150")
    assert payload == b""

    # timeout_ms=0 returns what is available now; last=N starts with the N newest.
    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?timeout_ms=0")
    assert [m["seq"] for m in _lines(payload)] == [1, 2, 3, 4, 5]
    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?last=2&timeout_ms=0")
    assert [m["seq"] for m in _lines(payload)] == [4, 5]
    _, _, payload = call(server, "GET", "/v0/pools/tails/tail?last=0&timeout_ms=100")
    assert payload == b""


@pytest.mark.parametrize("max_", [1, 3000, 10000])
def test_tail_max_counts_every_message_across_batches(server, max_):
    """A tail longer than one write batch ends at exactly ``max`` messages, none skipped.

    Regression: the JSONL/SSE framer counted its trailing newline as a message,
    so each batch of about 2,000 envelopes cut ``max`` short by one.
    """
    from plasmite import AlreadyExistsError, Client

    client = Client(server.pool_dir)
    try:  # the server is module-scoped: the first parameter fills the pool
        pool = client.create_pool("tail-batches", 8 * 1024 * 1024)
        pool.append_many([{"i": i, "pad": "x" * 60} for i in range(10000)])
        pool.close()
    except AlreadyExistsError:
        pass
    _, _, payload = call(server, "GET", f"/v0/pools/tail-batches/tail?since_seq=1&max={max_}&timeout_ms=5000")
    assert [m["seq"] for m in _lines(payload)] == list(range(1, max_ + 1))
    _, _, payload = call(server, "GET", f"/v0/ui/pools/tail-batches/events?since_seq=1&max={max_}&timeout_ms=5000")
    ids = [int(line[4:]) for line in payload.decode().splitlines() if line.startswith("id: ")]
    assert ids == list(range(1, max_ + 1))


@pytest.mark.parametrize(
    "query",
    ["gap_policy=sometimes", "since_seq=-1", "max=x", "timeout_ms=30001", "timeout_ms=1e3"],
)
def test_tail_rejects_bad_queries(server, query):
    jcall(server, "POST", "/v0/pools", {"pool": "tails"})
    status, _, payload = call(server, "GET", f"/v0/pools/tails/tail?{query}")
    out = json.loads(payload)
    assert status == 400 and out["error"]["kind"] == "Usage"


def test_tail_missing_pool_is_404(server):
    status, _, payload = call(server, "GET", "/v0/pools/ghost/tail?timeout_ms=10")
    assert status == 404 and json.loads(payload)["error"]["kind"] == "NotFound"


def test_tail_retention_gap(server, tmp_path):
    """gap_policy=error: a since_seq that was overwritten is 410 RetentionGap with the first missing seq."""
    from plasmite import Client

    jcall(server, "POST", "/v0/pools", {"pool": "gappy", "size_bytes": 64 * 1024})
    with Client(server.pool_dir) as c, c.open_pool("gappy") as pool:
        for i in range(2000):
            pool.append({"i": i, "pad": "x" * 100})
        oldest, _newest = pool.bounds()
    assert oldest > 1
    status, _, payload = call(server, "GET", "/v0/pools/gappy/tail?since_seq=1&gap_policy=error&timeout_ms=200")
    out = json.loads(payload)
    assert status == 410 and out["error"]["kind"] == "RetentionGap" and out["error"]["seq"] == 1
    # The default policy continues from the oldest retained message.
    status, _, payload = call(server, "GET", "/v0/pools/gappy/tail?since_seq=1&max=1&timeout_ms=500")
    assert status == 200 and _lines(payload)[0]["seq"] == oldest


def test_tail_terminal_error_line_after_start(server):
    """A gap met after the stream started ends it with one JSON error line."""
    import socket

    from plasmite import Client

    jcall(server, "POST", "/v0/pools", {"pool": "lapped", "size_bytes": 256 * 1024})
    with Client(server.pool_dir) as c, c.open_pool("lapped") as pool:
        pool.append({"first": True})
        host, port = server.address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /v0/pools/lapped/tail?since_seq=1&gap_policy=error&timeout_ms=20000 HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200")
        # The client stops reading: the server's socket buffers fill, its tail
        # falls behind, and the writer laps it.
        blob = "y" * 1000
        for _ in range(60):
            pool.append_many([{"pad": blob}] * 1000)
        received = b""
        sock.settimeout(30)
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += chunk
        sock.close()
    # De-chunk and look at the last JSON line.
    body = b""
    rest = received.split(b"\r\n\r\n", 1)[-1] if received.startswith(b"HTTP") else received
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2:]
    lines = [line for line in body.split(b"\n") if line.strip()]
    last = json.loads(lines[-1])
    assert last["error"]["kind"] == "RetentionGap"
    assert isinstance(last["error"]["seq"], int)
    assert all("error" not in json.loads(line) for line in lines[:-1])


def test_ui_events_are_sse(server):
    jcall(server, "POST", "/v0/pools", {"pool": "ssepool"})
    jcall(server, "POST", "/v0/pools/ssepool/append", {"data": {"hello": "sse"}})
    status, hdrs, payload = call(server, "GET", "/v0/ui/pools/ssepool/events?timeout_ms=200")
    assert status == 200 and hdrs["content-type"] == "text/event-stream"
    text = payload.decode()
    assert "id: 1\nevent: message\ndata: {\"seq\":1," in text
    # Last-Event-ID resumes after the given id.
    _, _, payload = call(server, "GET", "/v0/ui/pools/ssepool/events?timeout_ms=200", headers={"Last-Event-ID": "1"})
    assert payload == b""
    status, _, body = jcall(server, "GET", "/v0/ui/pools")
    assert status == 200 and "ssepool" in [p["name"] for p in body["pools"]]
    status, _, body = jcall(server, "GET", "/v0/ui/pools/ssepool/info")
    assert status == 200 and body["pool"]["bounds"] == {"oldest": 1, "newest": 1}


def test_ui_page_and_openapi(server):
    status, hdrs, payload = call(server, "GET", "/ui")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert b"<title>Plasmite" in payload and "script-src 'sha256-" in hdrs["content-security-policy"]
    status, _, payload2 = call(server, "GET", "/ui/pools/anything")
    assert status == 200 and payload2 == payload
    status, hdrs, _ = call(server, "GET", "/")
    assert status == 307 and hdrs["location"] == "/ui"

    status, hdrs, doc = jcall(server, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for path in ("/v0/pools", "/v0/pools/open", "/v0/pools/{pool}/info", "/v0/pools/{pool}",
                 "/v0/pools/{pool}/append", "/v0/pools/{pool}/messages/{seq}", "/v0/pools/{pool}/tail"):
        assert path in doc["paths"], path


def test_asgi_app_mounts_under_a_prefix(tmp_path):
    """create_app() is a plain ASGI app: mounted under /plasmite by a parent app it routes by root_path."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "mount.py"
    script.write_text(textwrap.dedent(
        f"""
        import socket, sys, uvicorn
        from plasmite_serve import create_app
        inner = create_app(pool_dir={str(tmp_path / 'pools')!r})

        async def parent(scope, receive, send):
            if scope["type"] == "http" and scope["path"].startswith("/plasmite/"):
                scope = dict(scope, root_path="/plasmite")
                return await inner(scope, receive, send)
            if scope["type"] == "http":
                await send({{"type": "http.response.start", "status": 200, "headers": []}})
                await send({{"type": "http.response.body", "body": b"parent"}})

        sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(64)
        print(sock.getsockname()[1], flush=True)
        uvicorn.Server(uvicorn.Config(parent, log_level="warning", lifespan="off")).run(sockets=[sock])
        """
    ))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())

        class S:
            address = f"127.0.0.1:{port}"

        status, _, body = jcall(S, "POST", "/plasmite/v0/pools", {"pool": "mounted"})
        assert status == 200 and body["pool"]["name"] == "mounted"
        status, _, body = jcall(S, "POST", "/plasmite/v0/pools/mounted/append", {"data": {"msg": "hi"}})
        assert status == 200 and body["message"]["data"] == {"msg": "hi"}
        status, _, payload = call(S, "GET", "/")
        assert payload == b"parent"
    finally:
        proc.terminate()
        proc.wait(10)


def test_route_table_and_openapi_agree(server):
    """Every JSON route of the table is in /openapi.json with its method, and every documented
    operation is routed (the Lite3 byte routes and the UI's are outside the document by design)."""
    from plasmite_serve.app import ROUTES

    _, _, doc = jcall(server, "GET", "/openapi.json")
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item
                  if method != "parameters"}
    routed = {(r.method, r.pattern) for r in ROUTES
              if r.pattern.startswith("/v0/pools") and "lite3" not in r.pattern} | {("GET", "/healthz")}
    assert documented == routed
