"""``pls`` with redis:// refs: pool admin, feed, follow (tail, since, replay,
filters), fetch, duplex and tap behave as with local pools; errors keep
their kinds and never show credentials."""

from __future__ import annotations

import json
import sys
import time

import pytest

from redis_support import RedisServer, redis_server_fixture, require_redis, unique  # noqa: F401 (fixture)
from cli_support import error_of, jsonl, pls, spawn

pytestmark = pytest.mark.timeout(300)


def test_pool_admin(redis_server, tmp_path):
    name = unique("admin")
    ref = f"{redis_server.url}/{name}"
    r = pls("pool", "create", ref, "--size", "64K", "--json", pool_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)["created"][0]
    assert created["name"] == name and created["file_size"] == 65536
    assert error_of(pls("pool", "create", ref, pool_dir=tmp_path))["kind"] == "AlreadyExists"
    info = json.loads(pls("pool", "info", ref, "--json", pool_dir=tmp_path).stdout)
    assert info["path"] == ref and info["metrics"]["message_count"] == 0
    listed = json.loads(pls("pool", "list", redis_server.url, "--json", pool_dir=tmp_path).stdout)["pools"]
    assert name in [p["name"] for p in listed]
    assert "No pools" in pls("pool", "list", pool_dir=tmp_path).stdout  # the local directory is separate
    r = pls("pool", "delete", ref, "--json", pool_dir=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["deleted"][0]["pool"] == ref
    r = pls("pool", "info", ref, pool_dir=tmp_path)
    assert r.returncode == 3 and error_of(r)["kind"] == "NotFound"


def test_feed_fetch_follow(redis_server, tmp_path):
    ref = f"{redis_server.url}/{unique('chat')}"
    r = pls("feed", ref, "--create", "--tag", "greet", '{"msg":"hi"}', pool_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["seq"] == 1
    r = pls("feed", ref, pool_dir=tmp_path, input="".join(json.dumps({"n": i}) + "\n" for i in range(2, 12)))
    assert [m["seq"] for m in jsonl(r.stdout)] == list(range(2, 12))
    assert json.loads(pls("fetch", ref, "5", pool_dir=tmp_path).stdout)["data"] == {"n": 5}
    r = pls("fetch", ref, "99", pool_dir=tmp_path)
    assert r.returncode == 3 and "holds seq 1..11" in error_of(r)["hint"]
    r = pls("follow", ref, "--tail", "3", "--jsonl", "--timeout", "300ms", pool_dir=tmp_path)
    assert r.returncode == 124 and [m["seq"] for m in jsonl(r.stdout)] == [9, 10, 11]
    r = pls("follow", ref, "--since", "1h", "--replay", "0", "--jsonl", "--where", ".data.n >= 10", pool_dir=tmp_path)
    assert r.returncode == 0 and [m["seq"] for m in jsonl(r.stdout)] == [10, 11]
    r = pls("follow", ref, "--tail", "5", "--tag", "greet", "--jsonl", "--timeout", "300ms", pool_dir=tmp_path)
    assert [m["data"] for m in jsonl(r.stdout)] == [{"msg": "hi"}]
    watcher = spawn("follow", ref, "--jsonl", "--one", "--where", '.data.status == "green"', pool_dir=tmp_path)
    time.sleep(1.0)
    pls("feed", ref, '{"status":"red"}', pool_dir=tmp_path)
    pls("feed", ref, '{"status":"green"}', pool_dir=tmp_path)
    out, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0 and json.loads(out)["data"] == {"status": "green"}


def test_duplex_and_tap(redis_server, tmp_path):
    ref = f"{redis_server.url}/{unique('room')}"
    r = pls("duplex", ref, "--create", "--me", "bot", "--timeout", "500ms", pool_dir=tmp_path,
            input='{"from":"bot","msg":"boot"}\n')
    assert r.returncode in (0, 124), r.stderr
    assert json.loads(pls("fetch", ref, "1", pool_dir=tmp_path).stdout)["data"] == {"from": "bot", "msg": "boot"}
    build = f"{redis_server.url}/{unique('build')}"
    r = pls("tap", build, "--create", "--", sys.executable, "-c", "print('out 1')", pool_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = pls("follow", build, "--tail", "10", "--jsonl", "--timeout", "300ms", pool_dir=tmp_path)
    kinds = [m["data"]["kind"] for m in jsonl(r.stdout)]
    assert kinds[0] == "start" and "line" in kinds and kinds[-1] == "exit"


def test_errors_and_credentials(redis_server, tmp_path):
    r = pls("feed", f"{redis_server.url}/{unique('missing')}", "{}", pool_dir=tmp_path)
    assert r.returncode == 3 and "pls pool create" in error_of(r)["hint"]
    r = pls("follow", f"{redis_server.url}/x", "--token", "abc", pool_dir=tmp_path)
    assert r.returncode == 2
    secret = "pa55-word-QQ"
    server = RedisServer(tmp_path, password=secret).start()
    try:
        for ref in (f"redis://:{secret}x@127.0.0.1:{server.port}/p", f"redis://:{secret}@127.0.0.1:{server.port}/p"):
            for args in (("feed", ref, "{}"), ("pool", "info", ref), ("fetch", ref, "1"), ("pool", "delete", ref),
                         ("follow", ref, "--tail", "1", "--timeout", "200ms")):
                r = pls(*args, pool_dir=tmp_path)
                assert r.returncode in (3, 6), (args, r.stderr)
                assert secret not in r.stdout + r.stderr
        r = pls("pool", "create", f"redis://:{secret}@127.0.0.1:{server.port}/p", pool_dir=tmp_path)
        assert r.returncode == 0 and secret not in r.stdout
        r = pls("feed", f"redis://:{secret}@127.0.0.1:{server.port}/p", "{}", pool_dir=tmp_path)
        assert r.returncode == 0
    finally:
        server.stop(save=False)
    from redis_support import free_port

    r = pls("feed", f"redis://127.0.0.1:{free_port()}/p", "{}", pool_dir=tmp_path)
    assert r.returncode == 8 and error_of(r)["kind"] == "Io"
    r = pls("feed", "redis://u:pw@[bad/p", "{}", pool_dir=tmp_path)
    assert r.returncode == 2 and "pw" not in r.stderr


def test_rediss_with_tls_ca(tmp_path):
    require_redis()
    from plasmite_serve.config import generate_self_signed

    cert, key, _fp = generate_self_signed("127.0.0.1")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server = RedisServer(tmp_path, tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")
    port = server.port
    try:
        try:
            server.start()
        except RuntimeError as exc:
            pytest.skip(f"redis-server without TLS support: {str(exc)[-200:]}")
        ref = f"rediss://127.0.0.1:{port}/secure"
        r = pls("feed", ref, "--create", "--tls-ca", str(tmp_path / "cert.pem"), '{"a":1}', pool_dir=tmp_path)
        assert r.returncode == 0, r.stderr
        r = pls("feed", ref, '{"a":2}', pool_dir=tmp_path)  # the self-signed certificate is not trusted
        assert r.returncode == 8 and "--tls-ca" in error_of(r)["hint"]
        r = pls("follow", ref, "--tail", "5", "--jsonl", "--timeout", "300ms", "--tls-ca", str(tmp_path / "cert.pem"),
                pool_dir=tmp_path)
        assert [m["data"] for m in jsonl(r.stdout)] == [{"a": 1}]
        r = pls("feed", f"redis://127.0.0.1:{port}/x", '{"a":3}', "--tls-ca", str(tmp_path / "cert.pem"), pool_dir=tmp_path)
        assert r.returncode == 2  # TLS options on a plain redis:// ref
    finally:
        server.stop(save=False)
