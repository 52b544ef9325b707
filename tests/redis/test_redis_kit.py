"""The transport conformance kit (plasmite_core.testing) against plasmite-redis,
on a real redis-server with a password (so a refused credential is checked);
Busy is provoked with a long-running script, Corrupt by writing the pool's
stream behind its seq counter's back."""

from __future__ import annotations

import threading
import time

import pytest

from redis_support import RedisServer, free_port, require_redis

testing = pytest.importorskip("plasmite_core.testing", reason="this core has no transport conformance kit")

PASSWORD = "kit-pw-0123"


@pytest.fixture(scope="module")
def kit_server(tmp_path_factory):
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis-kit"), "--busy-reply-threshold", "100",
                         password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop(save=False)


def _busy(server: RedisServer):
    def provoke(client, name):
        pool = client.open_pool(name)
        spin = threading.Thread(target=lambda: server.cli("eval", "while true do end", "0", timeout=120), daemon=True)
        spin.start()
        try:
            time.sleep(0.5)  # past busy-reply-threshold
            pool.append({"n": 1})
        finally:
            while spin.is_alive():
                try:
                    server.cli("script", "kill", timeout=10)
                except Exception:
                    pass
                spin.join(0.2)

    return provoke


def _corrupt(server: RedisServer):
    def provoke(client, name):
        server.cli("xadd", f"plasmite:{{{name}}}:log", "999999-0", "d", "{}")
        client.open_pool(name).append({"n": 1})

    return provoke


class TestRedisTransport(testing.TransportConformance):
    @pytest.fixture
    def transport(self, kit_server):
        from plasmite_core import plugins

        factory = plugins.transport("redis")
        extra = {}
        if "provoke" in getattr(testing.TransportUnderTest, "__dataclass_fields__", {}):
            extra["provoke"] = {"Busy": _busy(kit_server), "Corrupt": _corrupt(kit_server)}
        return testing.TransportUnderTest(
            connect=lambda: factory(f"redis://:{PASSWORD}@127.0.0.1:{kit_server.port}"),
            unreachable=lambda: factory(f"redis://127.0.0.1:{free_port()}"),
            unauthorized=lambda: factory(f"redis://:wrong-{PASSWORD}@127.0.0.1:{kit_server.port}"),
            **extra,
        )
