"""``pls serve --backend redis://...``: two stateless server replicas share the
same Redis pools; a follower on replica A sees appends made through B."""

from __future__ import annotations

import threading

import pytest

from redis_support import redis_server_fixture, require_redis, unique  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(300)


def test_two_replicas_share_pools(redis_server, tmp_path):
    require_redis()
    from plasmite_serve.client import RemoteClient
    from plasmite_serve.testing import ServerProcess

    backend = redis_server.url
    with ServerProcess(tmp_path / "a", "--backend", backend) as a, ServerProcess(tmp_path / "b", "--backend", backend) as b:
        name = unique("shared")
        ra, rb = RemoteClient(a.base_url), RemoteClient(b.base_url)
        ra.create_pool(name, 1 << 20)
        assert name in [p.name for p in rb.list_pools()]
        pool_a, pool_b = ra.open_pool(name), rb.open_pool(name)
        received = []
        stream = pool_a.open_stream(since_seq=1, timeout_ms=60000)

        def follow():
            for _ in range(5):
                m = stream.next()
                if m is None:
                    return
                received.append((m.seq, m.data))

        t = threading.Thread(target=follow)
        t.start()
        for i in range(5):
            assert pool_b.append({"i": i}).seq == i + 1
        t.join(60)
        assert received == [(i + 1, {"i": i}) for i in range(5)]
        assert pool_a.get(3).data == {"i": 2}
        assert pool_b.info().to_dict()["metrics"]["message_count"] == 5
        assert not (tmp_path / "a").exists() or not any((tmp_path / "a").glob("*.plasmite"))
        with pytest.raises(Exception) as exc:
            rb.open_pool(unique("missing"))
        assert exc.value.kind.label == "NotFound"
        rb.delete_pool(name)
        with pytest.raises(Exception) as exc:
            pool_a.append({"after": "delete"})
        assert exc.value.kind.label == "NotFound"
