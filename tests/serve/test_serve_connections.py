"""Slow and idle connections against `pls serve`: timeouts, the connection cap, a low descriptor limit.

Real sockets on loopback; the descriptor limit is set with util-linux's
``prlimit`` (skipped without it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import threading
import time

import pytest

from plasmite import Client
from plasmite_serve.testing import ServerProcess


def healthz(server, timeout=10):
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def connect(server, data=b""):
    host, port = server.address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    if data:
        s.sendall(data)
    return s


def read_until_closed(sock, limit=15.0):
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass)."""
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


HEAD_PART = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
BODY_HEAD = (b"POST /v0/pools/p/append HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n{\"data\":\"")


def test_head_body_and_idle_timeouts(tmp_path):
    with ServerProcess(tmp_path, "--head-timeout-ms", "1000", "--body-timeout-ms", "1500",
                       "--idle-timeout-ms", "2000") as server:
        with Client(tmp_path) as c:
            c.create_pool("p")
        started = time.monotonic()
        silent = connect(server)
        partial = connect(server, HEAD_PART)
        body = connect(server, BODY_HEAD)
        idle = connect(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # Bytes that keep trickling in do not extend a head or body deadline.
        for _ in range(4):
            time.sleep(0.25)
            partial.sendall(b"x")
            body.sendall(b"y")
        assert read_until_closed(silent).startswith(b"HTTP/1.1 408")
        assert read_until_closed(partial).startswith(b"HTTP/1.1 408")
        answer = read_until_closed(body)
        assert answer.startswith(b"HTTP/1.1 408")
        err = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert err["kind"] == "Usage" and "--body-timeout-ms" in err["hint"]
        first = read_until_closed(idle)  # the answer, then the close once idle
        assert first.startswith(b"HTTP/1.1 200") and first.count(b"HTTP/1.1") == 1
        assert time.monotonic() - started < 10
        for s in (silent, partial, body, idle):
            s.close()
        with Client(tmp_path) as c, c.open_pool("p") as p:
            assert p.bounds() == (None, None)  # the half-sent append stored nothing
        # The limits are published in the OpenAPI description.
        host, port = server.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/openapi.json")
        text = json.loads(conn.getresponse().read())["info"]["description"]
        conn.close()
        assert "idle for 2000 ms" in text and "within 1000 ms" in text and "within 1500 ms" in text


def test_connection_cap_makes_room_or_answers_503(tmp_path):
    with ServerProcess(tmp_path, "--max-connections", "3") as server:
        with Client(tmp_path) as c:
            c.create_pool("p")
        # Three slow heads fill the cap; a new client makes room by closing the oldest.
        slow = [connect(server, HEAD_PART) for _ in range(3)]
        time.sleep(0.2)
        assert healthz(server) == 200
        assert read_until_closed(slow[0], limit=5) == b""  # evicted, no answer
        for s in slow:
            s.close()
        # Three open tails are requests in progress: nothing to evict, so the next connection is 503.
        tails = [connect(server, b"GET /v0/pools/p/tail?timeout_ms=20000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                 for _ in range(3)]
        for t in tails:
            t.settimeout(10)
            assert t.recv(4096).startswith(b"HTTP/1.1 200")
        refused = connect(server)
        answer = read_until_closed(refused, limit=5)
        assert answer.startswith(b"HTTP/1.1 503")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["kind"] == "Busy"
        tails[0].close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if healthz(server) == 200:
                    break
            except (ConnectionError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline, "a closed tail did not free its connection slot"
            time.sleep(0.1)
        for t in tails:
            t.close()


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
def test_300_slow_connections_under_256_descriptors(tmp_path):
    """300 slow clients (silent, half a head, half a body; all trickling bytes) against a server limited
    to 256 descriptors: /healthz keeps answering 200 throughout and the server never nears the limit."""
    with ServerProcess(tmp_path, "--head-timeout-ms", "4000", "--body-timeout-ms", "4000",
                       wrapper=["prlimit", "--nofile=256"]) as server:
        with Client(tmp_path) as c:
            c.create_pool("p")
        pid = server.proc.pid
        socks = []
        for i in range(300):
            kind = i % 3
            try:
                socks.append(connect(server, (b"", HEAD_PART, BODY_HEAD)[kind]))
            except OSError:
                pass  # the server may already have closed it to make room
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.5):
                for s in socks:
                    try:
                        s.send(b"z")
                    except OSError:
                        pass

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        statuses = []
        peak = 0
        try:
            deadline = time.monotonic() + 8  # past both timeouts
            while time.monotonic() < deadline:
                statuses.append(healthz(server))
                peak = max(peak, open_fds(pid))
                time.sleep(0.2)
        finally:
            stop.set()
            trickler.join(5)
        assert statuses and all(s == 200 for s in statuses), statuses
        assert peak < 200, peak  # connections are capped at half of 256, with room to spare
        # By now every slow connection was closed by the server (timeouts, or making room).
        still_open = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                while s.recv(65536):  # a 408, then the close
                    pass
            except socket.timeout:
                still_open += 1
            except OSError:
                pass  # reset: closed too
            finally:
                s.close()
        assert still_open == 0
        assert healthz(server) == 200
