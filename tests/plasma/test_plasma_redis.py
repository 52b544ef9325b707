"""Plasma's publishers against the gateway: a real redis-server (started here
on a free loopback port, in a temp dir), Plasma-shaped JSON PUBLISHed on its
channels, recorded into the pool and fanned out to SSE and gRPC subscribers."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

pytest.importorskip("plasmite_plasma")
pytest.importorskip("redis.client")  # a submodule: without redis-py, "redis" would be tests/redis/
import redis  # noqa: E402

from plasmite import Client  # noqa: E402
from plasmite_plasma.testing import GatewayProcess, free_port  # noqa: E402

from plasma_support import SSE, GrpcSub, wait_until  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")


class RedisServer:
    def __init__(self, directory) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client))
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None

    def publish(self, channel: str, payload: str) -> int:
        return redis.Redis(port=self.port).publish(channel, payload)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


def hc(gw) -> int:
    try:
        with urllib.request.urlopen(gw.url + "/hc", timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def redis_server(tmp_path):
    (tmp_path / "redis").mkdir()
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


def gateway(tmp_path, r: RedisServer, **env) -> GatewayProcess:
    (tmp_path / "pools").mkdir(exist_ok=True)
    return GatewayProcess(tmp_path / "pools", env={
        "PLASMA_SUBSCRIBER_TYPE": "redis", "PLASMA_SUBSCRIBER_REDIS_ADDR": f"127.0.0.1:{r.port}",
        "PLASMA_SUBSCRIBER_REDIS_CHANNELS": "plasma,other", "PLASMA_SUBSCRIBER_REDIS_TIMEOUT": "200ms",
        "PLASMA_SUBSCRIBER_REDIS_RETRY_INTERVAL": "200ms", "PLASMA_SUBSCRIBER_REDIS_OVER_MAX_RETRY_BEHAVIOR": "alive",
        "PLASMA_DEBUG": "true", **env})


def publish_when_subscribed(r: RedisServer, channel: str, payload: str) -> None:
    """PUBLISH once the gateway's subscription is live (PUBLISH returns the
    number of receivers), so nothing is published into the void."""
    wait_until(lambda: r.publish(channel, payload) > 0)


def test_published_events_reach_sse_and_grpc_and_are_recorded(tmp_path, redis_server):
    with gateway(tmp_path, redis_server) as gw:
        s = SSE(gw.port, "eventType=program:1234")
        g = GrpcSub(gw.grpc_target)
        try:
            g.send(["program"])
            wait_until(lambda: any(e.get("request-events") == ["program"] for e in gw.access_log()))
            publish_when_subscribed(redis_server, "plasma",
                                    json.dumps({"meta": {"type": "program:1234:views"}, "data": {"views": 5}}))
            redis_server.publish("other", json.dumps({"data": "hi", "meta": {"type": "program:1234"}}))
            got = s.events(2)
            assert [f["json"] for f in got] == [
                {"meta": {"type": "program:1234:views"}, "data": {"views": 5}},
                {"meta": {"type": "program:1234"}, "data": "hi"}]
            assert g.take(2) == [("program:1234:views", '{"views":5}'), ("program:1234", '"hi"')]
        finally:
            s.close()
            g.close()
        # Recorded into the pool, tagged with the channel: a late subscriber replays it.
        msgs = list(Client(tmp_path / "pools").pool("plasma"))
        assert [(m.tags, m.data["meta"]["type"]) for m in msgs] == [
            (["plasma"], "program:1234:views"), (["other"], "program:1234")]
        late = SSE(gw.port, "eventType=program", {"Last-Event-ID": "0"})
        try:
            assert [f["json"]["data"] for f in late.events(2)] == [{"views": 5}, "hi"]
        finally:
            late.close()


def test_malformed_channel_json_is_logged_and_skipped(tmp_path, redis_server):
    with gateway(tmp_path, redis_server) as gw:
        s = SSE(gw.port, "eventType=ok")
        try:
            publish_when_subscribed(redis_server, "plasma", "{not json")
            for bad in ('{"meta": {}}', '["meta"]', '{"meta": {"type": 3}, "data": 1}', "\xff"):
                redis_server.publish("plasma", bad)
            redis_server.publish("plasma", json.dumps({"meta": {"type": "ok"}, "data": 1}))
            assert s.events(1)[0]["json"] == {"meta": {"type": "ok"}, "data": 1}
            assert s.quiet(0.5) == []
        finally:
            s.close()
        assert gw.proc.poll() is None
        skipped = [e for e in gw.error_log() if e["msg"].startswith("skipped a channel message")]
        assert len(skipped) == 5 and skipped[0]["payload"] == "{not json" and skipped[0]["channel"] == "plasma"
        assert [m.data for m in Client(tmp_path / "pools").pool("plasma")] == [{"meta": {"type": "ok"}, "data": 1}]
        with urllib.request.urlopen(gw.metrics_url + "/metrics", timeout=20) as r:
            prom = r.read().decode()
        assert 'plasma_events_skipped_total{source="redis"} 5.0' in prom
        assert "plasma_redis_recorded_total 1.0" in prom


def test_hc_follows_redis_down_and_back_and_delivery_resumes(tmp_path, redis_server):
    with gateway(tmp_path, redis_server) as gw:
        assert hc(gw) == 200
        redis_server.stop()
        wait_until(lambda: hc(gw) == 500, timeout=30)
        assert gw.proc.poll() is None  # alive: keeps retrying
        redis_server.start()
        wait_until(lambda: hc(gw) == 200, timeout=30)
        s = SSE(gw.port, "eventType=back")
        try:
            publish_when_subscribed(redis_server, "plasma", json.dumps({"meta": {"type": "back"}, "data": True}))
            assert s.events(1)[0]["json"]["data"] is True
        finally:
            s.close()


def test_debug_page_publishes_through_redis(tmp_path, redis_server):
    with gateway(tmp_path, redis_server) as gw:
        s = SSE(gw.port, "eventType=dbg")
        try:
            body = json.dumps({"meta": {"type": "dbg"}, "data": {"n": 1}}).encode()

            def post_reaches() -> bool:
                urllib.request.urlopen(urllib.request.Request(gw.url + "/debug", data=body, method="POST"), timeout=20)
                return bool(s.quiet(0.3))

            wait_until(post_reaches)
        finally:
            s.close()
        assert [m.tags for m in Client(tmp_path / "pools").pool("plasma")][0] == ["plasma"]


def test_die_behaviour_stops_the_gateway_after_max_retries(tmp_path, redis_server):
    gw = gateway(tmp_path, redis_server, PLASMA_SUBSCRIBER_REDIS_OVER_MAX_RETRY_BEHAVIOR="die",
                 PLASMA_SUBSCRIBER_REDIS_MAX_RETRY="2")
    with gw:
        redis_server.stop()
        wait_until(lambda: gw.proc.poll() is not None, timeout=30)
        assert any(e["msg"].startswith("over max retry") for e in gw.error_log())


def test_replicas_follow_one_redis_pool_through_the_transport(tmp_path, redis_server):
    """With a redis:// transport installed, gateway replicas fan out one pool kept in Redis."""
    from plasmite_core import plugins
    from plasmite_core.errors import UsageError

    try:
        factory = plugins.transport("redis")
    except UsageError:
        pytest.skip("no redis:// transport plugin installed")
    base = f"redis://127.0.0.1:{redis_server.port}"
    pool = factory(base).create_pool("events")
    (tmp_path / "gw").mkdir()
    env = {"PLASMA_POOLS": f"{base}/events"}
    with GatewayProcess(tmp_path / "gw", env=env) as g1, GatewayProcess(tmp_path / "gw", env=env) as g2:
        subs = [SSE(g.port, "eventType=shared") for g in (g1, g2)]
        try:
            pool.append({"meta": {"type": "shared:1"}, "data": {"via": "redis pool"}})
            for s in subs:
                assert s.events(1)[0]["json"] == {"meta": {"type": "shared:1"}, "data": {"via": "redis pool"}}
        finally:
            for s in subs:
                s.close()
        assert hc(g1) == 200
