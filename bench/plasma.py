"""Fan-out and throughput of the Plasma gateway (`pls plasma`).

    python -m bench.plasma [--sse 1000] [--grpc 100] [--rounds 30] [--events 20000]

Starts a real gateway on loopback and, from this one process (asyncio),
opens the subscribers; then appends events to the pool through the client API
and times, per event, the moment the *last* subscriber received it (the
fan-out figure) and each subscriber's own delay; finally the events/s one
SSE and one gRPC subscriber receive when the pool is written as fast as
possible. Needs plasmite-plasma installed. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time

from plasmite import Client
from plasmite_plasma.testing import GatewayProcess

TYPE = "bench:fanout"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def sse_reader(port: int, query: str, arrivals: dict, ready: asyncio.Event, counter: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET /?{query} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    counter[0] += 1
    if counter[0] == counter[1]:
        ready.set()
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            i = line.find(b'"n":')
            if line.startswith(b"data: ") and i > 0:
                n = int(line[i + 4:line.index(b"}", i)])
                arrivals.setdefault(n, []).append(time.perf_counter())
    finally:
        writer.close()


async def grpc_reader(target: str, arrivals: dict, ready: asyncio.Event, counter: list, types: list[str]) -> None:
    import json

    import grpc

    from plasmite_plasma import stream_pb2, stream_pb2_grpc

    async with grpc.aio.insecure_channel(target) as ch:
        stub = stream_pb2_grpc.StreamServiceStub(ch)
        call = stub.Events()
        await call.write(stream_pb2.Request(Events=[stream_pb2.EventType(type=t) for t in types]))
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        async for p in call:
            arrivals.setdefault(json.loads(p.data)["n"], []).append(time.perf_counter())


async def fanout(gw: GatewayProcess, pool, kind: str, subscribers: int, rounds: int) -> dict:
    arrivals: dict[int, list[float]] = {}
    ready = asyncio.Event()
    counter = [0, subscribers]
    if kind == "sse":
        tasks = [asyncio.create_task(sse_reader(gw.port, f"eventType={TYPE}", arrivals, ready, counter))
                 for _ in range(subscribers)]
    else:
        tasks = [asyncio.create_task(grpc_reader(gw.grpc_target, arrivals, ready, counter, [TYPE]))
                 for _ in range(subscribers)]
    await asyncio.wait_for(ready.wait(), 120)
    print(f"{kind}: {subscribers} subscribers connected", file=sys.stderr)
    await asyncio.sleep(2.0 if kind == "grpc" else 0.5)  # gRPC: let the subscription requests land
    last, each = [], []
    base = 1_000_000 if kind == "grpc" else 0
    for r in range(rounds):
        n = base + r
        sent = time.perf_counter()
        pool.append({"meta": {"type": TYPE}, "data": {"n": n}})
        deadline = time.monotonic() + 30
        while len(arrivals.get(n, ())) < subscribers and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        got = arrivals.get(n, [])
        if len(got) < subscribers:
            raise SystemExit(f"{kind}: only {len(got)}/{subscribers} subscribers got event {n}")
        last.append((max(got) - sent) * 1000)
        each.extend((t - sent) * 1000 for t in got)
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"last_p50": pct(last, 50), "last_p99": pct(last, 99), "each_p50": pct(each, 50),
            "each_p99": pct(each, 99)}


async def throughput(gw: GatewayProcess, pool, kind: str, events: int) -> float:
    arrivals: dict[int, list[float]] = {}
    ready = asyncio.Event()
    counter = [0, 1]
    etype = f"bench:rate:{kind}"
    if kind == "sse":
        task = asyncio.create_task(sse_reader(gw.port, f"eventType={etype}", arrivals, ready, counter))
    else:
        task = asyncio.create_task(grpc_reader(gw.grpc_target, arrivals, ready, counter, [etype]))
    await asyncio.wait_for(ready.wait(), 60)
    print(f"{kind}: throughput run", file=sys.stderr)
    await asyncio.sleep(1.0)
    base = 2_000_000 if kind == "sse" else 3_000_000
    start = time.perf_counter()
    for lo in range(0, events, 256):
        pool.append_many([{"meta": {"type": etype}, "data": {"n": base + i}} for i in range(lo, min(events, lo + 256))])
        await asyncio.sleep(0)
    deadline = time.monotonic() + 300
    while len(arrivals) < events and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    elapsed = max(max(v) for v in arrivals.values()) - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if len(arrivals) < events:
        raise SystemExit(f"{kind}: received {len(arrivals)}/{events}")
    return events / elapsed


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as d:
        pool = Client(d).pool("plasma", 64 * 1024 * 1024)
        env = {"PLASMA_ACCESS_LOG_OUT": "discard"}
        with GatewayProcess(d, env=env) as gw:
            sse = await fanout(gw, pool, "sse", args.sse, args.rounds)
            grpc_f = await fanout(gw, pool, "grpc", args.grpc, args.rounds)
            sse_rate = await throughput(gw, pool, "sse", args.events)
            grpc_rate = await throughput(gw, pool, "grpc", args.events)
    print(f"`python -m bench.plasma --sse {args.sse} --grpc {args.grpc} --rounds {args.rounds} "
          f"--events {args.events}`, Python {platform.python_version()}, {platform.system()} {platform.machine()}\n")
    print("| figure | value |")
    print("|---|---|")
    for name, f, n in (("SSE", sse, args.sse), ("gRPC", grpc_f, args.grpc)):
        print(f"| one event to {n:,} {name} subscribers, until the last receives it | "
              f"p50 {f['last_p50']:.1f} ms, p99 {f['last_p99']:.1f} ms |")
        print(f"| ... each {name} subscriber's delay | p50 {f['each_p50']:.1f} ms, p99 {f['each_p99']:.1f} ms |")
    print(f"| events/s to one SSE subscriber | {sse_rate:,.0f} |")
    print(f"| events/s to one gRPC subscriber | {grpc_rate:,.0f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sse", type=int, default=1000)
    ap.add_argument("--grpc", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--events", type=int, default=20000)
    asyncio.run(main(ap.parse_args()))
