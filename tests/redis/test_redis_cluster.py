"""plasmite-redis on a 3-node Redis Cluster started locally: pools spread over
the nodes, each pool's keys in one hash slot, the same semantics as on one
server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from redis_support import RedisCluster, require_redis
from cli_support import jsonl, pls

pytestmark = pytest.mark.timeout(300)
NAMES = [f"pool-{i}" for i in range(12)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_redis()
    c = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def client(cluster):
    from plasmite_redis import RedisClient

    with RedisClient(cluster.url) as c:
        for name in NAMES:
            c.create_pool(name, 1 << 20, max_messages=50)
        yield c


def test_pools_spread_over_every_node_and_keys_share_a_slot(cluster, client):
    holders = set()
    for name in NAMES:
        slots = {cluster.nodes[0].cli("cluster", "keyslot", f"plasmite:{{{name}}}:{k}").strip() for k in ("meta", "log")}
        assert len(slots) == 1
        client.open_pool(name).append({"hello": name})
        holders.add(next(i for i, n in enumerate(cluster.nodes)
                         if n.cli("exists", f"plasmite:{{{name}}}:meta").strip() == "1"))
    assert holders == {0, 1, 2}
    assert sorted(p.name for p in client.list_pools()) == sorted(NAMES)  # SCAN over all primaries


def test_semantics_on_the_cluster(client):
    from plasmite import Durability

    pool = client.open_pool("pool-3")
    first = pool.bounds()[1] or 0
    msgs = pool.append_many([{"i": i} for i in range(80)], ["t"]) + [pool.append({"i": 80}, durability=Durability.FLUSH)]
    assert [m.seq for m in msgs] == list(range(first + 1, first + 82))
    assert pool.get(msgs[-2].seq).data == {"i": 79}
    assert pool.bounds() == (first + 82 - 50, first + 81)  # max_messages=50
    gaps = []
    got = [m.seq for m in pool.tail(since_seq=first + 1, timeout_ms=0, on_gap=lambda a, b: gaps.append((a, b)))]
    assert got == list(range(first + 32, first + 82)) and gaps == [(first + 1, first + 32)]
    assert [m.seq for m in pool.tail(last=2, tags=["t"], timeout_ms=0)] == [first + 80]


def test_blocking_follow_and_async_tails_on_the_cluster(client):
    pools = [client.open_pool(n) for n in NAMES[:6]]
    stream = pools[0].open_stream(last=0)
    threading.Timer(0.3, lambda: pools[0].append({"wake": 1})).start()
    m = stream.next(30000)
    assert m is not None and m.data == {"wake": 1}

    async def main():
        tasks = [asyncio.create_task(_two(p)) for p in pools]
        await asyncio.sleep(0.5)
        for p in pools:
            await asyncio.to_thread(p.append_many, [{"v": "a"}, {"v": "b"}])
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [[{"v": "a"}, {"v": "b"}]] * len(pools)


async def _two(pool):
    return [m.data async for m in pool.atail(last=0, max_messages=2, timeout_ms=60000)]


def test_cli_on_the_cluster(cluster, tmp_path):
    ref = f"{cluster.url}/cli-pool"
    assert pls("pool", "create", ref, "--size", "64K", pool_dir=tmp_path).returncode == 0
    r = pls("feed", ref, pool_dir=tmp_path, input='{"a":1}\n{"a":2}\n')
    assert r.returncode == 0 and [m["seq"] for m in jsonl(r.stdout)] == [1, 2]
    r = pls("follow", ref, "--tail", "5", "--jsonl", "--timeout", "500ms", pool_dir=tmp_path)
    assert r.returncode == 124 and [m["data"] for m in jsonl(r.stdout)] == [{"a": 1}, {"a": 2}]
    assert "cli-pool" in pls("pool", "list", cluster.url, pool_dir=tmp_path).stdout
    assert pls("pool", "delete", ref, pool_dir=tmp_path).returncode == 0
