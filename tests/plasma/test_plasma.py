"""The Plasma-compatible gateway (`pls plasma`), end to end on loopback: a real
gateway process, pools written through the client API, raw SSE connections
and the generated gRPC client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytest.importorskip("plasmite_plasma")
pytest.importorskip("grpc")

from plasmite import Client  # noqa: E402
from plasmite_plasma.testing import GatewayProcess  # noqa: E402

from plasma_support import SSE, GrpcSub, wait_until  # noqa: E402


def plasma_event(etype: str, data) -> dict:
    return {"meta": {"type": etype}, "data": data}


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    d = tmp_path_factory.mktemp("plasma")
    Client(d).pool("plasma").append(plasma_event("program:1", {"before": True}))
    env = {"PLASMA_ORIGIN": "https://app.example", "PLASMA_SSE_RETRY": "1500", "PLASMA_SSE_HEARTBEAT": "300ms",
           "PLASMA_MAX_EVENT_TYPES": "5", "PLASMA_DEBUG": "true"}
    with GatewayProcess(d, env=env) as g:
        g.pool = Client(d).pool("plasma")
        yield g


# ------------------------------------------------------------------ config


def run_pls(env: dict, *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PLASMA_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "plasmite_cli", "plasma", *args], env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, words", [
    ({"PLASMA_PROT": "8080"}, ["unknown setting PLASMA_PROT", "PLASMA_PORT"]),
    ({"PLASMA_PORT": "eighty"}, ["invalid PLASMA_PORT", "integer"]),
    ({"PLASMA_GRPC_PORT": "70000"}, ["invalid PLASMA_GRPC_PORT", "0-65535"]),
    ({"PLASMA_DEBUG": "yes"}, ["invalid PLASMA_DEBUG", "true or false"]),
    ({"PLASMA_SUBSCRIBER_TYPE": "kafka"}, ["unknown subscriber type"]),
    ({"PLASMA_SUBSCRIBER_TYPE": "redis"}, ["needs at least one channel", "PLASMA_SUBSCRIBER_REDIS_CHANNELS"]),
    ({"PLASMA_SUBSCRIBER_REDIS_TIMEOUT": "soon"}, ["invalid PLASMA_SUBSCRIBER_REDIS_TIMEOUT", "duration"]),
    ({"PLASMA_SUBSCRIBER_REDIS_OVER_MAX_RETRY_BEHAVIOR": "maybe"}, ["alive, die"]),
    ({"PLASMA_ERROR_LOG_LEVEL": "loud"}, ["invalid PLASMA_ERROR_LOG_LEVEL"]),
    ({"PLASMA_TLS_CERT_FILE": "cert.pem"}, ["both a certificate and a key"]),
])
def test_bad_settings_are_usage_errors_at_startup(env, words):
    r = run_pls(env)
    assert r.returncode == 2, r.stderr
    err = json.loads(r.stderr)["error"]
    assert err["kind"] == "Usage"
    text = err["message"] + " " + err.get("hint", "")
    for w in words:
        assert w in text
    assert "Traceback" not in r.stderr


def test_busy_port_is_an_io_error(tmp_path, gw):
    r = run_pls({"PLASMA_HOST": "127.0.0.1", "PLASMA_PORT": str(gw.port), "PLASMA_POOL_DIR": str(tmp_path)})
    assert r.returncode == 8, r.stderr
    assert "PLASMA_PORT" in json.loads(r.stderr)["error"]["message"]


def test_plasma_ignored_settings_and_helm_spellings_are_accepted():
    from plasmite_plasma.config import resolve

    cfg = resolve({"PLASMA_PPROF_PORT": "6060", "PLASMA_METRICS_TYPE": "log", "PLASMA_GRPCPORT": "1234",
                   "PLASMA_SSE_EVENT_QUERY": "types", "PLASMA_SUBSCRIBER_REDIS_RETRY_INTERBAL": "1m30s",
                   "PLASMA_SUBSCRIBER_REDIS_CHANNELS": "a, b"})
    assert (cfg.grpc_port, cfg.sse_event_query, cfg.redis_retry_interval, cfg.redis_channels) == \
        (1234, "types", 90.0, ["a", "b"])
    assert resolve({"PLASMA_PORT": "1"}, {"port": "2"}).port == 2  # a flag beats its variable


# --------------------------------------------------------------------- SSE


def test_sse_type_matching_schema_retry_and_cors(gw):
    subs = {q: SSE(gw.port, f"eventType={q}") for q in ("program", "program:1234", "program:1234:views", "other")}
    both = SSE(gw.port, "eventType=program,program:1234")  # one delivery, not one per matching key
    try:
        s = subs["program"]
        assert s.status == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        assert s.headers["access-control-allow-origin"] == "https://app.example"
        assert s.headers["cache-control"] == "no-cache"
        gw.pool.append(plasma_event("program:1234:views", {"views": 10}))
        gw.pool.append(plasma_event("program:99", "str"))
        gw.pool.append(plasma_event("other", None))
        views = [subs[q].events(1)[0] for q in ("program", "program:1234", "program:1234:views")]
        for f in views:
            assert f["json"] == {"meta": {"type": "program:1234:views"}, "data": {"views": 10}}
            assert list(f["json"]) == ["meta", "data"]  # Plasma's field order
        assert subs["program"].events(1)[0]["json"]["data"] == "str"
        assert subs["other"].events(1)[0]["json"] == {"meta": {"type": "other"}, "data": None}
        assert subs["program:1234"].quiet(0.5) == []  # program:99 and other did not reach it
        assert [f["json"]["meta"]["type"] for f in both.events(2)] == ["program:1234:views", "program:99"]
        assert both.quiet(0.5) == []
        assert any(line == "retry: 1500" for line in s.raw)
        ids = [int(f["id"]) for f in views]
        assert len(set(ids)) == 1 and ids[0] == gw.pool.bounds()[1] - 2  # the id is the pool seq
    finally:
        for c in [*subs.values(), both]:
            c.close()


@pytest.mark.parametrize("query, status, text", [
    ("", 400, "specify event queries"),
    ("eventType=", 400, "event query can't be empty"),
    ("eventType=a,b,c,d,e,f", 400, "too many event types"),
    ("eventType=" + "x" * 300, 400, "longer than"),
    ("type=a", 400, "specify event queries"),
])
def test_sse_bad_queries(gw, query, status, text):
    code, body, _ = get(f"{gw.url}/?{query}", {"Accept": "text/event-stream"})
    assert code == status
    assert text in body.decode()


def test_sse_resumes_from_last_event_id_without_loss_or_repeat(gw):
    first = SSE(gw.port, "eventType=resume")
    for i in range(3):
        gw.pool.append(plasma_event("resume", i))
    got = first.events(3)
    first.close()
    last_id = got[1]["id"]  # the client saw 0 and 1 before it dropped
    gw.pool.append(plasma_event("resume:sub", 3))
    gw.pool.append(plasma_event("unrelated", "x"))
    again = SSE(gw.port, "eventType=resume", {"Last-Event-ID": last_id})
    gw.pool.append(plasma_event("resume", 4))
    try:
        replayed = again.events(3)
        assert [f["json"]["data"] for f in replayed] == [2, 3, 4]
        assert [int(f["id"]) for f in replayed] == sorted(int(f["id"]) for f in replayed)
        assert again.quiet(0.5) == []
    finally:
        again.close()
    # Plasma's own query form works too; an unusable id is ignored (live only), as Plasma does.
    q = SSE(gw.port, f"eventType=resume&lastEventId={got[2]['id']}")
    bad = SSE(gw.port, "eventType=resume", {"Last-Event-ID": "not-a-seq"})
    try:
        assert [f["json"]["data"] for f in q.events(2)] == [3, 4]
        assert bad.status == 200 and bad.quiet(0.5) == []
    finally:
        q.close()
        bad.close()


def test_heartbeat_comments_go_to_heartbeat_subscribers_only(gw):
    hb = SSE(gw.port, "eventType=heartbeat")
    plain = SSE(gw.port, "eventType=quiet")
    try:
        comments = []
        while len(comments) < 2:
            f = hb.next()
            assert f is not None
            if "comment" in f:
                comments.append(f["comment"])
        assert comments == ["heartbeat ", "heartbeat "]
        assert ":heartbeat " in hb.raw
        plain.quiet(1.0)
        assert not any(line.startswith(":") for line in plain.raw)
    finally:
        hb.close()
        plain.close()


def test_messages_that_are_not_plasma_events_are_skipped(gw):
    s = SSE(gw.port, "eventType=ok")
    try:
        gw.pool.append({"no": "meta"})
        gw.pool.append({"meta": {"type": 5}, "data": 1})
        gw.pool.append(plasma_event("ok", "after"))
        assert s.events(1)[0]["json"]["data"] == "after"
    finally:
        s.close()
    status, body, _ = get(gw.metrics_url + "/metrics")
    assert status == 200
    assert 'plasma_events_skipped_total{source="pool"} 2.0' in body.decode()


# -------------------------------------------------------------------- gRPC


def gateway_saw_request(gw, types: list[str]) -> bool:
    return any(e.get("msg") == "gRPC" and e.get("request-events") == types for e in gw.access_log())


def test_grpc_subscribe_resubscribe_unsubscribe_force_close(gw):
    sub = GrpcSub(gw.grpc_target)
    try:
        sub.send(["news", "sports:1"])
        wait_until(lambda: gateway_saw_request(gw, ["news", "sports:1"]))
        gw.pool.append(plasma_event("news:world", {"h": 1}))
        gw.pool.append(plasma_event("sports:2", "no"))
        gw.pool.append(plasma_event("sports:1:goal", "yes"))
        assert sub.take(2) == [("news:world", '{"h":1}'), ("sports:1:goal", '"yes"')]

        sub.send(["weather"])  # replaces the subscription
        wait_until(lambda: gateway_saw_request(gw, ["weather"]))
        gw.pool.append(plasma_event("news:world", {"h": 2}))
        gw.pool.append(plasma_event("weather", 21))
        assert sub.take(1) == [("weather", "21")]

        sub.send([])  # unsubscribes, the stream stays open
        wait_until(lambda: gateway_saw_request(gw, []))
        gw.pool.append(plasma_event("weather", 22))
        assert sub.quiet(0.7) == []
        sub.send(["weather"])
        wait_until(lambda: sum(e.get("request-events") == ["weather"] for e in gw.access_log()) >= 2)
        gw.pool.append(plasma_event("weather", 23))
        assert sub.take(1) == [("weather", "23")]

        status, body, _ = get(gw.metrics_url + "/metrics/plasma")
        m = json.loads(body)
        assert m["connections_grpc"] >= 1 and m["connections"] == m["connections_sse"] + m["connections_grpc"]

        sub.force_close()
        assert sub.quiet(10) == []
        wait_until(lambda: sub.status is not None)
        import grpc

        assert sub.status == grpc.StatusCode.OK
    finally:
        sub.close()
    wait_until(lambda: json.loads(get(gw.metrics_url + "/metrics/plasma")[1])["connections_grpc"] == 0)


def test_grpc_too_many_types_is_invalid_argument(gw):
    import grpc

    sub = GrpcSub(gw.grpc_target)
    try:
        sub.send([f"t{i}" for i in range(6)])
        wait_until(lambda: sub.status is not None)
        assert sub.status == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        sub.close()


# ------------------------------------------------------- health, metrics, debug


def test_health_metrics_and_debug_page(gw):
    assert get(gw.url + "/hc")[0] == 200
    status, body, headers = get(gw.metrics_url + "/metrics/plasma")
    assert status == 200 and headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"connections", "connections_sse", "connections_grpc"}
    rt = json.loads(get(gw.metrics_url + "/metrics/python")[1])
    for key in ("python_version", "os", "cpu_num", "thread_num", "gc_counts", "memory_rss"):
        assert key in rt
    assert rt["memory_rss"] > 1_000_000
    prom = get(gw.metrics_url + "/metrics")[1].decode()
    assert 'plasma_connections{transport="sse"}' in prom and "plasma_events_total" in prom

    page = get(gw.url + "/debug")
    assert page[0] == 200 and b"EventData" in page[1]
    s = SSE(gw.port, "eventType=debug")
    try:
        req = urllib.request.Request(gw.url + "/debug", method="POST",
                                     data=json.dumps(plasma_event("debug:test", {"x": 1})).encode())
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.status == 200
        assert s.events(1)[0]["json"] == plasma_event("debug:test", {"x": 1})
    finally:
        s.close()
    bad = urllib.request.Request(gw.url + "/debug", method="POST", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=20)
    assert e.value.code == 400
    assert any(e.get("msg") == "healthCheck" and e.get("status") == 200 for e in gw.access_log())


def test_debug_is_off_by_default(tmp_path):
    with GatewayProcess(tmp_path) as g:
        assert get(g.url + "/debug")[0] == 404
        assert get(g.url + "/hc")[0] == 200


def test_hc_is_500_when_a_pool_is_unreadable(tmp_path):
    with GatewayProcess(tmp_path) as g:
        assert get(g.url + "/hc")[0] == 200
        os.unlink(tmp_path / "plasma.plasmite")
        status, body, _ = get(g.url + "/hc")
        assert status == 500 and b"plasma" in body


def test_tls_for_sse_and_grpc_when_cert_and_key_are_given(tmp_path):
    import ssl

    import grpc

    serve_config = pytest.importorskip("plasmite_serve.config")
    cert, key, _ = serve_config.generate_self_signed("127.0.0.1")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    env = {"PLASMA_TLS_CERT_FILE": str(tmp_path / "cert.pem"), "PLASMA_TLS_KEY_FILE": str(tmp_path / "key.pem")}
    with GatewayProcess(tmp_path, env=env) as g:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with urllib.request.urlopen(g.url + "/hc", timeout=20, context=ctx) as r:
            assert g.url.startswith("https://") and r.status == 200
        creds = grpc.ssl_channel_credentials(root_certificates=cert)
        sub = GrpcSub(f"localhost:{g.grpc_port}", creds)
        try:
            sub.send(["secure"])
            wait_until(lambda: gateway_saw_request(g, ["secure"]))
            Client(tmp_path).pool("plasma").append(plasma_event("secure", 1))
            assert sub.take(1) == [("secure", "1")]
        finally:
            sub.close()
        plain = GrpcSub(g.grpc_target)  # a plaintext client is refused
        try:
            plain.send(["secure"])
            wait_until(lambda: plain.status is not None)
            assert plain.status == grpc.StatusCode.UNAVAILABLE
        finally:
            plain.close()


def test_pls_start_up_does_not_load_the_gateway_stack():
    def loaded(*args):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "plasmite_cli", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}

    baseline = loaded("serve", "--help")  # a plugin command: every plugin registers its commands
    plasma = loaded("plasma", "--help")
    assert "plasmite_plasma" in plasma
    added = plasma - baseline
    assert not added & {"grpc", "uvicorn", "prometheus_client", "redis", "google"}, added


def test_the_asgi_apps_mount_in_another_server_without_lifespan(tmp_path):
    import threading

    import uvicorn

    from plasmite_plasma import Gateway, create_app, create_metrics_app, resolve
    from plasmite_plasma.testing import free_port

    cfg = resolve({"PLASMA_POOL_DIR": str(tmp_path), "PLASMA_POOLS": "a,b", "PLASMA_ACCESS_LOG_OUT": "discard",
                   "PLASMA_ERROR_LOG_OUT": "discard"})
    gateway = Gateway(cfg)
    main, metrics = create_app(gateway), create_metrics_app(gateway)

    async def host_app(scope, receive, send):  # a host application routing a prefix to the metrics app
        if scope["type"] == "http" and scope["path"].startswith("/ops/"):
            return await metrics({**scope, "path": scope["path"][4:]}, receive, send)
        return await main(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(host_app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: server.started)
        assert get(f"http://127.0.0.1:{port}/hc")[0] == 200
        s = SSE(port, "eventType=x")
        try:
            Client(tmp_path).pool("b").append(plasma_event("x", "from b"))
            got = s.events(1)
            Client(tmp_path).pool("a").append(plasma_event("x:y", "from a"))
            got += s.events(1)
            assert [f["json"]["data"] for f in got] == ["from b", "from a"]
            assert [f["id"] for f in got] == ["0.1", "1.1"]  # one seq per followed pool
        finally:
            s.close()
        again = SSE(port, "eventType=x", {"Last-Event-ID": "0.1"})  # saw b's event, missed a's
        try:
            assert [f["json"]["data"] for f in again.events(1)] == ["from a"]
            assert again.quiet(0.5) == []
        finally:
            again.close()
        status, body, _ = get(f"http://127.0.0.1:{port}/ops/metrics/plasma")
        assert status == 200 and "connections_sse" in json.loads(body)
    finally:
        server.should_exit = True
        t.join(20)


def test_a_subscriber_that_falls_behind_catches_up_from_the_pool(tmp_path):
    pool = Client(tmp_path).pool("plasma", 64 * 1024 * 1024)
    with GatewayProcess(tmp_path, env={"PLASMA_ACCESS_LOG_OUT": "discard"}) as g:
        slow = SSE(g.port, "eventType=bulk", paused=True)
        fast = SSE(g.port, "eventType=bulk")
        try:
            blob = "x" * 2000
            total = 6000  # more than a subscriber's queue (4096) and any socket buffer
            for lo in range(0, total, 500):
                pool.append_many([plasma_event("bulk", {"i": i, "pad": blob}) for i in range(lo, lo + 500)])
            assert [f["json"]["data"]["i"] for f in fast.events(total, timeout=120)] == list(range(total))
            slow.resume()
            got = slow.events(total, timeout=120)
            assert [f["json"]["data"]["i"] for f in got] == list(range(total))
            seqs = [int(f["id"]) for f in got]
            assert seqs == list(range(seqs[0], seqs[0] + total))
            assert slow.quiet(0.5) == []
        finally:
            slow.close()
            fast.close()
        assert any(e["msg"].startswith("a subscriber fell behind") for e in g.error_log())


def test_a_pool_url_is_followed_through_its_transport(tmp_path):
    """Replicas on other hosts follow one pool: here over pls serve's http transport."""
    testing = pytest.importorskip("plasmite_serve.testing")
    from plasmite_serve.client import RemoteClient

    (tmp_path / "server").mkdir()
    (tmp_path / "gw").mkdir()
    with testing.ServerProcess(tmp_path / "server") as server:
        remote = RemoteClient(server.base_url).create_pool("shared")
        remote.append(plasma_event("remote", "old"))
        env = {"PLASMA_POOLS": f"{server.base_url}/shared"}
        with GatewayProcess(tmp_path / "gw", env=env) as g1, GatewayProcess(tmp_path / "gw", env=env) as g2:
            subs = [SSE(g.port, "eventType=remote") for g in (g1, g2)]
            try:
                remote.append(plasma_event("remote:x", "new"))
                for s in subs:
                    f = s.events(1)[0]
                    assert (f["json"]["data"], f["id"]) == ("new", "2")
                replay = SSE(g2.port, "eventType=remote", {"Last-Event-ID": "0"})
                try:
                    assert [f["json"]["data"] for f in replay.events(2)] == ["old", "new"]
                finally:
                    replay.close()
                assert get(g1.url + "/hc")[0] == 200
            finally:
                for s in subs:
                    s.close()
        assert not (tmp_path / "gw" / "plasma.plasmite").exists()  # no local pool was made


def test_committed_grpc_stubs_match_the_proto(tmp_path):
    """The regeneration command in the plugin's README reproduces what matters
    in the committed stubs: the serialized descriptor (names, field numbers)
    and the method path a Plasma client calls."""
    pytest.importorskip("grpc_tools")
    import pathlib

    import plasmite_plasma

    src = pathlib.Path(plasmite_plasma.__file__).parent.parent
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"--python_out={tmp_path}",
                        f"--grpc_python_out={tmp_path}", str(src / "plasmite_plasma" / "stream.proto")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

    def lines(root, name, needle):
        text = (root / "plasmite_plasma" / name).read_text()
        return [ln.strip() for ln in text.splitlines() if needle in ln]

    descriptor = lines(src, "stream_pb2.py", "AddSerializedFile")
    assert descriptor and descriptor == lines(tmp_path, "stream_pb2.py", "AddSerializedFile")
    method = lines(src, "stream_pb2_grpc.py", "/proto.StreamService/Events")
    assert method and method == lines(tmp_path, "stream_pb2_grpc.py", "/proto.StreamService/Events")
