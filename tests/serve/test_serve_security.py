"""Auth, access modes, CORS and server limits of `plasmite serve`, over real sockets."""

from __future__ import annotations

import json
import socket
import time

import pytest

import http.client

from plasmite_serve.testing import ServerProcess


def call(server, method, path, body=None, headers=None):
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdrs = dict(headers or {})
    data = json.dumps(body).encode() if body is not None else None
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

TOKEN = "s3cret-token-value"


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-auth")
    token_file = d / "token.txt"
    token_file.write_text(TOKEN + "\n")
    with ServerProcess(d / "pools", "--token-file", str(token_file)) as s:
        yield s


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_token_required_on_v0(authed):
    status, hdrs, out = jcall(authed, "GET", "/v0/pools")
    assert status == 401 and out["error"]["kind"] == "Permission"
    assert hdrs["www-authenticate"].startswith("Bearer")
    status, _, out = jcall(authed, "GET", "/v0/pools", headers=auth("wrong"))
    assert status == 401 and out["error"]["kind"] == "Permission"
    status, _, out = jcall(authed, "GET", "/v0/pools", headers=auth())
    assert status == 200 and "pools" in out
    # The scheme name is case-insensitive (RFC 7235).
    assert jcall(authed, "GET", "/v0/pools", headers={"Authorization": "bearer " + TOKEN})[0] == 200


@pytest.mark.parametrize("value", ["", "Token " + TOKEN, "Bearer", "Bearer  " + TOKEN, f"Bearer {TOKEN}, Bearer evil",
                                   f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}"])
def test_malformed_bearer_headers(authed, value):
    status, _, out = jcall(authed, "GET", "/v0/pools", headers={"Authorization": value})
    assert status == 401 and out["error"]["kind"] == "Permission"


def test_duplicate_authorization_headers_refused(authed):
    host, port = authed.address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET /v0/pools HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
              f"Authorization: Bearer evil\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 401")


def test_auth_covers_every_v0_route_but_not_health_or_page(authed):
    for method, path in [("POST", "/v0/pools"), ("POST", "/v0/pools/open"), ("GET", "/v0/pools/x/info"),
                         ("DELETE", "/v0/pools/x"), ("POST", "/v0/pools/x/append"), ("GET", "/v0/pools/x/messages/1"),
                         ("GET", "/v0/pools/x/tail"), ("GET", "/v0/ui/pools"), ("GET", "/v0/ui/pools/x/events"),
                         ("GET", "/v0/ui/pools/x/info")]:
        status, _, out = jcall(authed, method, path, body={"pool": "x", "data": 1} if method == "POST" else None)
        assert status == 401, (method, path, out)
    assert jcall(authed, "GET", "/healthz")[0] == 200
    assert call(authed, "GET", "/ui")[0] == 200  # static page, no data: it asks for the token itself


def test_authorized_round_trip(authed):
    assert jcall(authed, "POST", "/v0/pools", {"pool": "tok"}, headers=auth())[0] == 200
    status, _, out = jcall(authed, "POST", "/v0/pools/tok/append", {"data": {"a": 1}}, headers=auth())
    assert status == 200 and out["message"]["seq"] == 1
    status, _, payload = call(authed, "GET", "/v0/ui/pools/tok/events?timeout_ms=100", headers=auth())
    assert status == 200 and b"event: message" in payload


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-ro")
    from plasmite import Client

    with Client(d) as c, c.create_pool("ro") as p:
        p.append({"seeded": True})
    with ServerProcess(d, "--access", "read-only") as s:
        yield s


def test_read_only_allows_reads_and_forbids_writes(read_only):
    assert jcall(read_only, "GET", "/v0/pools")[0] == 200
    assert jcall(read_only, "GET", "/v0/pools/ro/info")[0] == 200
    assert jcall(read_only, "POST", "/v0/pools/open", {"pool": "ro"})[0] == 200
    assert jcall(read_only, "GET", "/v0/pools/ro/messages/1")[0] == 200
    status, _, payload = call(read_only, "GET", "/v0/pools/ro/tail?timeout_ms=100")
    assert status == 200 and b'"seeded":true' in payload
    for method, path, body in [("POST", "/v0/pools/ro/append", {"data": 1}), ("POST", "/v0/pools", {"pool": "n"}),
                               ("DELETE", "/v0/pools/ro", None)]:
        status, _, out = jcall(read_only, method, path, body)
        assert status == 403, (method, path)
        assert out["error"]["kind"] == "Permission" and "read-only" in out["error"]["message"]


def test_write_only_allows_writes_and_forbids_reads(tmp_path):
    with ServerProcess(tmp_path, "--access", "write-only") as s:
        assert jcall(s, "POST", "/v0/pools", {"pool": "wo"})[0] == 200
        status, _, out = jcall(s, "POST", "/v0/pools/wo/append", {"data": {"n": 1}})
        assert status == 200 and out["message"]["seq"] == 1
        for method, path, body in [("GET", "/v0/pools", None), ("GET", "/v0/pools/wo/info", None),
                                   ("POST", "/v0/pools/open", {"pool": "wo"}), ("GET", "/v0/pools/wo/messages/1", None),
                                   ("GET", "/v0/pools/wo/tail?timeout_ms=10", None),
                                   ("GET", "/v0/ui/pools/wo/events?timeout_ms=10", None)]:
            status, _, out = jcall(s, method, path, body)
            assert status == 403 and out["error"]["kind"] == "Permission", (method, path)
        assert jcall(s, "DELETE", "/v0/pools/wo")[0] == 200


ALLOWED = "https://app.example.com"


@pytest.fixture(scope="module")
def cors(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-cors")
    with ServerProcess(d, "--cors-origin", ALLOWED + "/", "--cors-origin", "http://localhost:5173") as s:
        jcall(s, "POST", "/v0/pools", {"pool": "demo"})
        yield s


def test_cors_allowed_origin(cors):
    status, hdrs, _ = call(cors, "GET", "/v0/ui/pools", headers={"Origin": ALLOWED})
    assert status == 200 and hdrs["access-control-allow-origin"] == ALLOWED
    assert "plasmite-version" in hdrs["access-control-expose-headers"]
    status, hdrs, _ = call(cors, "OPTIONS", "/v0/ui/pools/demo/events",
                           headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET",
                                    "Access-Control-Request-Headers": "authorization"})
    assert status == 204 and hdrs["access-control-allow-origin"] == ALLOWED
    assert "GET" in hdrs["access-control-allow-methods"] and "authorization" in hdrs["access-control-allow-headers"]
    assert "mcp-protocol-version" in hdrs["access-control-allow-headers"]  # browser MCP clients on an allowed origin
    status, hdrs, _ = call(cors, "GET", "/v0/ui/pools/demo/events?timeout_ms=50", headers={"Origin": "http://localhost:5173"})
    assert status == 200 and hdrs["access-control-allow-origin"] == "http://localhost:5173"
    # Error responses carry the CORS headers too, so a page can read them.
    status, hdrs, _ = call(cors, "GET", "/v0/pools/ghost/info", headers={"Origin": ALLOWED})
    assert status == 404 and hdrs["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize("origin", ["https://evil.example", "*", "null", "https://app.example.com.evil.example"])
def test_cors_other_origins_get_no_grant(cors, origin):
    status, hdrs, _ = call(cors, "GET", "/v0/ui/pools", headers={"Origin": origin})
    assert status == 200 and "access-control-allow-origin" not in hdrs
    status, hdrs, _ = call(cors, "OPTIONS", "/v0/ui/pools/demo/events",
                           headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert status == 403 and "access-control-allow-origin" not in hdrs


def test_without_cors_flags_preflight_is_refused(tmp_path):
    with ServerProcess(tmp_path) as s:
        status, hdrs, _ = call(s, "OPTIONS", "/v0/pools", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
        assert status == 403 and "access-control-allow-origin" not in hdrs
        status, hdrs, _ = call(s, "GET", "/v0/pools", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in hdrs


def test_body_limit(tmp_path):
    with ServerProcess(tmp_path, "--max-body-bytes", "1000") as s:
        jcall(s, "POST", "/v0/pools", {"pool": "small"})
        ok = {"data": {"x": "x" * 890}}
        assert jcall(s, "POST", "/v0/pools/small/append", ok)[0] == 200
        status, _, out = jcall(s, "POST", "/v0/pools/small/append", {"data": "x" * 1000})
        assert status == 413 and out["error"]["kind"] == "Usage" and "1000" in out["error"]["message"]
        # A chunked body without Content-Length is counted as it arrives.
        host, port = s.address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        body = json.dumps({"data": "y" * 3000}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500]) for i in range(0, len(body), 500))
        sock.sendall(b"POST /v0/pools/small/append HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        data = b""
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        sock.close()
        assert data.startswith(b"HTTP/1.1 413")
        status, _, out = jcall(s, "GET", "/v0/pools/small/info")
        assert out["pool"]["bounds"] == {"oldest": 1, "newest": 1}  # nothing oversized was stored


def test_tail_timeout_limit(tmp_path):
    with ServerProcess(tmp_path, "--max-tail-timeout-ms", "300") as s:
        jcall(s, "POST", "/v0/pools", {"pool": "t"})
        status, _, out = jcall(s, "GET", "/v0/pools/t/tail?timeout_ms=301")
        assert status == 400 and out["error"]["kind"] == "Usage" and "300" in out["error"]["hint"]
        started = time.monotonic()
        status, _, payload = call(s, "GET", "/v0/pools/t/tail")  # no timeout: the server's limit applies
        assert status == 200 and payload == b""
        assert time.monotonic() - started < 10


def _open_tail(server, pool):
    host, port = server.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"GET /v0/pools/{pool}/tail?timeout_ms=20000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head


def test_tail_concurrency_limit_answers_busy(tmp_path):
    with ServerProcess(tmp_path, "--max-tail-concurrency", "2") as s:
        jcall(s, "POST", "/v0/pools", {"pool": "busy"})
        a, head_a = _open_tail(s, "busy")
        b, head_b = _open_tail(s, "busy")
        assert head_a.startswith(b"HTTP/1.1 200") and head_b.startswith(b"HTTP/1.1 200")
        status, _, out = jcall(s, "GET", "/v0/pools/busy/tail?timeout_ms=10")
        assert status == 423 and out["error"]["kind"] == "Busy"
        status, _, _ = call(s, "GET", "/v0/ui/pools/busy/events?timeout_ms=10")
        assert status == 423
        # Ordinary requests are unaffected by open tails.
        assert jcall(s, "POST", "/v0/pools/busy/append", {"data": {"n": 1}})[0] == 200
        a.close()
        # Closing a client frees its slot (the server notices the disconnect).
        deadline = time.monotonic() + 10
        while True:
            status, _, _ = call(s, "GET", "/v0/pools/busy/tail?timeout_ms=10")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200
        b.close()


def test_many_tails_then_all_released(tmp_path):
    """64 concurrent tails (the default budget) are served; the 65th is Busy; all slots come back."""
    with ServerProcess(tmp_path) as s:
        jcall(s, "POST", "/v0/pools", {"pool": "wide"})
        socks = [_open_tail(s, "wide")[0] for _ in range(64)]
        status, _, _ = jcall(s, "GET", "/v0/pools/wide/tail?timeout_ms=10")
        assert status == 423
        # One append reaches every open tail.
        assert jcall(s, "POST", "/v0/pools/wide/append", {"data": {"fanout": 1}})[0] == 200
        got = 0
        for sock in socks:
            sock.settimeout(10)
            data = b""
            while b'"fanout":1' not in data:
                data += sock.recv(65536)
            got += 1
        assert got == 64
        for sock in socks:
            sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if call(s, "GET", "/v0/pools/wide/tail?timeout_ms=10")[0] == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("tail slots were not released after clients disconnected")
