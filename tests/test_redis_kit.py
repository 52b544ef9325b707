"""The transport conformance kit (plasmite_core.testing) against plasmite-redis,
on a real redis-server with a password (so a refused credential is checked)."""

from __future__ import annotations

import pytest

from redis_support import RedisServer, free_port, require_redis

testing = pytest.importorskip("plasmite_core.testing", reason="this core has no transport conformance kit")

PASSWORD = "kit-pw-0123"


@pytest.fixture(scope="module")
def kit_server(tmp_path_factory):
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis-kit"), password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop(save=False)


class TestRedisTransport(testing.TransportConformance):
    @pytest.fixture
    def transport(self, kit_server):
        from plasmite_core import plugins

        factory = plugins.transport("redis")
        return testing.TransportUnderTest(
            connect=lambda: factory(f"redis://:{PASSWORD}@127.0.0.1:{kit_server.port}"),
            unreachable=lambda: factory(f"redis://127.0.0.1:{free_port()}"),
            unauthorized=lambda: factory(f"redis://:wrong-{PASSWORD}@127.0.0.1:{kit_server.port}"),
        )
