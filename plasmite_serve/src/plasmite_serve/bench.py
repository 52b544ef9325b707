"""Benchmark of the HTTP server and client: ``python -m plasmite_serve.bench``.

Figures (a real `plasmite serve` process on loopback, this package's client):

- tail delivery: messages/s a RemoteTail receives catching up on a filled pool
  (and the same stream read as raw bytes, to show the server's share);
- appends: requests/s from one keep-alive client, one request per message,
  and messages/s for ``append_many`` (pipelined requests);
- Lite3 tail: messages/s of ``tail_lite3`` (server-built Lite3 frames) read as
  raw bytes and through ``RemotePool.tail_lite3`` (``Lite3Frame`` objects);
- memory: the server's RSS while 64 tails stay open (re-opened when the server
  ends them) and a writer appends, sampled over ``--duration`` seconds.

Prints one JSON document; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time

from .client import RemoteClient
from .testing import ServerProcess


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _fill(pool_dir: str, name: str, n: int, tags: list[str] | None = None) -> None:
    """A fresh 256 MiB local pool of ``n`` small messages."""
    from plasmite_core.client import Client

    with Client(pool_dir) as c, c.create_pool(name, 256 * 1024 * 1024) as p:
        payload = {"sensor": "temp", "value": 23.5, "unit": "C", "ok": True}
        for start in range(0, n, 10_000):
            p.append_many([payload] * min(10_000, n - start), tags=tags)


def _raw_stream(server: ServerProcess, path: str) -> tuple[float, int]:
    """Seconds and bytes of one GET read to its end on a plain socket: how
    fast the server streams (the client does no per-message work)."""
    host, port = server.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    t0 = time.perf_counter()
    total = 0
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    raw_s = time.perf_counter() - t0
    sock.close()
    return raw_s, total


def bench_tail(server: ServerProcess, pool_dir: str, n: int) -> dict:
    _fill(pool_dir, "tailbench", n)
    client = RemoteClient(server.base_url)
    pool = client.open_pool("tailbench")
    raw_s, total = _raw_stream(server, f"/v0/pools/tailbench/tail?since_seq=1&max={n}")
    # RemoteTail.next_json(): framing, line split, seq de-duplication.
    t0 = time.perf_counter()
    stream = pool.open_stream(since_seq=1, max_messages=n)
    got = 0
    for _raw in stream:
        got += 1
    tail_s = time.perf_counter() - t0
    # RemoteTail.next(): plus a decoded Message per envelope.
    t0 = time.perf_counter()
    decoded = sum(1 for _m in pool.tail(since_seq=1, max_messages=min(n, 100_000)))
    dec_s = time.perf_counter() - t0
    client.close()
    return {
        "messages": n,
        "raw_stream_msgs_per_s": round(n / raw_s),
        "raw_stream_mib_per_s": round(total / raw_s / 2**20, 1),
        "remote_tail_next_json_msgs_per_s": round(got / tail_s),
        "remote_tail_decoded_msgs_per_s": round(decoded / dec_s),
        "received": got,
    }


def bench_tail_lite3(server: ServerProcess, pool_dir: str, n: int) -> dict:
    """The same kind of messages as bench_tail, streamed as Lite3 frames."""
    _fill(pool_dir, "lite3bench", n, tags=["t"])
    raw_s, total = _raw_stream(server, f"/v0/pools/lite3bench/tail_lite3?since_seq=1&max={n}")
    client = RemoteClient(server.base_url)
    pool = client.open_pool("lite3bench")
    t0 = time.perf_counter()
    got = sum(1 for _f in pool.tail_lite3(since_seq=1, max_messages=n))
    tail_s = time.perf_counter() - t0
    client.close()
    return {
        "messages": n,
        "raw_stream_msgs_per_s": round(n / raw_s),
        "raw_stream_mib_per_s": round(total / raw_s / 2**20, 1),
        "remote_tail_lite3_frames_per_s": round(got / tail_s),
        "received": got,
    }


def bench_append(server: ServerProcess, n: int) -> dict:
    client = RemoteClient(server.base_url)
    pool = client.create_pool("appendbench", 64 * 1024 * 1024)
    body = b'{"sensor":"temp","value":23.5,"unit":"C","ok":true,"i":1}'
    for _ in range(200):
        pool.append_json(body)
    t0 = time.perf_counter()
    for _ in range(n):
        pool.append_json(body)
    json_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n // 2):
        pool.append({"sensor": "temp", "value": 23.5, "i": i})
    dict_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool.append_many([{"sensor": "temp", "value": 23.5, "i": i} for i in range(n)])
    many_s = time.perf_counter() - t0
    client.close()
    return {
        "requests": n,
        "append_json_req_per_s": round(n / json_s),
        "append_dict_req_per_s": round((n // 2) / dict_s),
        "append_many_pipelined_msgs_per_s": round(n / many_s),
    }


def bench_memory(server: ServerProcess, tails: int, duration: float) -> dict:
    client = RemoteClient(server.base_url)
    client.create_pool("membench", 4 * 1024 * 1024)
    stop = threading.Event()
    received = [0] * tails
    host, port = server.address.rsplit(":", 1)

    def tailer(i: int) -> None:
        while not stop.is_set():
            s = socket.create_connection((host, int(port)))
            s.settimeout(1.0)
            s.sendall(b"GET /v0/pools/membench/tail?last=0&timeout_ms=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while not stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                received[i] += chunk.count(b'{"seq":')
            s.close()

    def writer() -> None:
        pool = RemoteClient(server.base_url).open_pool("membench")
        i = 0
        while not stop.is_set():
            pool.append({"i": i, "pad": "m" * 100})
            i += 1
            time.sleep(0.01)

    threads = [threading.Thread(target=tailer, args=(i,), daemon=True) for i in range(tails)]
    threads.append(threading.Thread(target=writer, daemon=True))
    for t in threads:
        t.start()
    time.sleep(2.0)
    assert server.proc is not None
    samples = []
    t_end = time.monotonic() + duration
    while time.monotonic() < t_end:
        samples.append(_rss_kib(server.proc.pid))
        time.sleep(max(0.5, duration / 30))
    stop.set()
    for t in threads:
        t.join(5)
    client.close()
    return {
        "tails": tails,
        "duration_s": duration,
        "rss_kib_first": samples[0],
        "rss_kib_last": samples[-1],
        "rss_kib_max": max(samples),
        "rss_growth_kib": samples[-1] - samples[0],
        "messages_received_per_tail_min": min(received),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tail-messages", type=int, default=200_000)
    ap.add_argument("--appends", type=int, default=10_000)
    ap.add_argument("--tails", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the memory test")
    ap.add_argument("--lite3-messages", type=int, default=50_000)
    ap.add_argument("--skip", action="append", default=[], choices=["tail", "lite3", "append", "memory"])
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    results: dict = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="plasmite-serve-bench-") as d:
        with ServerProcess(d) as server:
            if "tail" not in args.skip:
                results["tail"] = bench_tail(server, d, args.tail_messages)
            if "lite3" not in args.skip:
                results["tail_lite3"] = bench_tail_lite3(server, d, args.lite3_messages)
            if "append" not in args.skip:
                results["append"] = bench_append(server, args.appends)
            if "memory" not in args.skip:
                results["memory"] = bench_memory(server, args.tails, args.duration)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
