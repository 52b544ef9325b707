"""The workloads, written once against the adapter interface and run for every
system: append one per call, append in batches, read back decoded, get by key,
writer -> follower latency across processes, two writer processes at once, and
messages retained per MiB.

An adapter (bench.floor, bench.plasmite_adapter, bench.peers.*) exposes
``create(workdir, purpose) -> spec`` and ``Handle(spec)`` with ``append``,
``append_many``, ``fill``, ``read(n)``, ``keys(n)``, ``get(key)``,
``follow_start()``, ``follow_next(timeout_s)``, ``all_items()``, ``footprint()``
and ``close()``; ``None`` marks an operation the system does not have.
Cross-process workers are spawned (not forked) and reopen the spec themselves.
"""

from __future__ import annotations

import importlib
import os
import random
import time
from dataclasses import dataclass

from bench.util import MiB, Result, measure, median, mp_context, payload, payload_bytes, payloads, percentile

SYSTEMS = {
    "floor": "bench.floor",
    "plasmite": "bench.plasmite_adapter",
    "sqlite": "bench.peers.sqlite_queue",
    "persist-queue": "bench.peers.persist_queue",
    "diskcache": "bench.peers.diskcache_peer",
    "litequeue": "bench.peers.litequeue_peer",
    "redis": "bench.peers.redis_streams",
    "plasmite-redis": "bench.peers.plasmite_redis",
    "jsonl": "bench.peers.jsonl_flock",
}
PEERS = ["sqlite", "persist-queue", "diskcache", "litequeue", "redis", "plasmite-redis", "jsonl"]


def load(name: str):
    return importlib.import_module(SYSTEMS[name])


@dataclass
class Settings:
    n_append: int = 200_000  # max messages per timed run
    max_s: float = 1.5  # max seconds per timed run
    repeats: int = 5  # timed runs per figure (median reported)
    chunk: int = 500  # messages per timing-loop step
    batch: int = 256  # messages per append_many call
    n_read: int = 100_000  # messages filled for read/get
    fill_max_s: float = 20.0
    n_get: int = 50_000
    lat_n: int = 3_000  # hand-off samples
    lat_gap_s: float = 0.0005  # pause between hand-off messages
    lat_max_s: float = 4.0
    two_n: int = 100_000  # per writer
    two_max_s: float = 2.0
    retained_pool: int = 1 * MiB

    @classmethod
    def quick(cls) -> "Settings":
        return cls(
            n_append=20_000, max_s=0.3, repeats=1, n_read=10_000, fill_max_s=5.0,
            n_get=5_000, lat_n=200, lat_max_s=1.5, two_n=10_000, two_max_s=0.5,
        )


def _note(mod, key: str) -> str:
    return getattr(mod, "NOTES", {}).get(key, "")


# -- append --------------------------------------------------------------------

def append_one(name: str, workdir: str, st: Settings) -> list[Result]:
    mod = load(name)
    h = mod.Handle(mod.create(workdir, "append1"))
    try:
        objs = payloads(st.chunk)
        app = h.append
        for o in objs[:100]:
            app(o)

        def step() -> int:
            for o in objs:
                app(o)
            return len(objs)

        v, ex = measure(step, st.n_append, st.max_s, st.repeats)
        out = [Result(name, "append", v, "msg/s", extra=ex)]
        if hasattr(h, "append_json"):
            bufs = [payload_bytes(i) for i in range(st.chunk)]
            appj = h.append_json

            def step_json() -> int:
                for b in bufs:
                    appj(b)
                return len(bufs)

            v, ex = measure(step_json, st.n_append, st.max_s, st.repeats)
            out.append(Result(name, "append_json", v, "msg/s", extra=ex))
        return out
    finally:
        h.close()


def append_batch(name: str, workdir: str, st: Settings) -> list[Result]:
    mod = load(name)
    h = mod.Handle(mod.create(workdir, "batch"))
    try:
        if getattr(h, "append_many", None) is None:
            return [Result(name, "append_many", None, "msg/s", note=_note(mod, "batch") or "no batch API")]
        objs = payloads(st.batch)
        many = h.append_many
        many(objs)

        def step() -> int:
            many(objs)
            return len(objs)

        v, ex = measure(step, st.n_append * 2, st.max_s, st.repeats)
        return [Result(name, "append_many", v, "msg/s", note=f"batches of {st.batch}", extra=ex)]
    finally:
        h.close()


# -- read, get, footprint --------------------------------------------------------

def read_get(name: str, workdir: str, st: Settings) -> list[Result]:
    mod = load(name)
    h = mod.Handle(mod.create(workdir, "read"))
    out: list[Result] = []
    try:
        filled = 0
        t0 = time.perf_counter()
        while filled < st.n_read and time.perf_counter() - t0 < st.fill_max_s:
            k = min(1000, st.n_read - filled)
            h.fill(payloads(k, filled))
            filled += k

        if name not in ("plasmite", "floor"):
            fp = h.footprint()
            per = filled / (fp / MiB) if fp else None
            note = _note(mod, "footprint") or "unbounded store: messages / MiB of its files"
            out.append(Result(name, "retained_per_mib", per, "msg/MiB", note=note, extra={"messages": filled, "bytes": fp}))

        keys = h.keys(filled) if getattr(h, "get", None) is not None else None
        if keys:
            rng = random.Random(1234)
            sample = rng.choices(keys, k=20 * st.chunk)
            chunks = [sample[k : k + st.chunk] for k in range(0, len(sample), st.chunk)]
            get = h.get
            turn = [0]

            def step() -> int:
                chunk = chunks[turn[0] % len(chunks)]  # pre-drawn random keys, no per-step cost
                turn[0] += 1
                for key in chunk:
                    get(key)
                return len(chunk)

            get(sample[0])
            v, ex = measure(step, st.n_get, st.max_s, st.repeats)
            ex["retained"] = len(keys)
            out.append(Result(name, "get", v, "get/s", note=_note(mod, "get"), extra=ex))
        else:
            out.append(Result(name, "get", None, "get/s", note=_note(mod, "get") or "no lookup by key"))

        consuming = "consuming" in _note(mod, "read")
        reps = 1 if consuming else st.repeats
        if hasattr(h, "read_raw"):
            runs, cpu = [], []
            for _ in range(reps):
                c = time.process_time()
                t = time.perf_counter()
                k = h.read_raw(filled)
                runs.append(k / (time.perf_counter() - t))
                cpu.append(k / max(1e-9, time.process_time() - c))
            out.append(Result(name, "read_raw", median(runs), "msg/s", note="raw JSON envelopes, not decoded",
                              extra={"runs": runs, "messages": k, "cpu_rate": median(cpu)}))
        if getattr(h, "read_raw_batch", None) is not None:
            runs, cpu = [], []
            for _ in range(reps):
                c = time.process_time()
                t = time.perf_counter()
                k = h.read_raw_batch(filled)
                if k is None:
                    break
                runs.append(k / (time.perf_counter() - t))
                cpu.append(k / max(1e-9, time.process_time() - c))
            if runs:
                out.append(Result(name, "read_raw_batch", median(runs), "msg/s", ok=k == filled,
                                  note="Stream.poll_json(1024) batches",
                                  extra={"runs": runs, "messages": k, "cpu_rate": median(cpu)}))
        runs, cpu = [], []
        k = 0
        for _ in range(reps):
            c = time.process_time()
            t = time.perf_counter()
            if consuming:  # slow consumers: bounded in time, 1000 at a time
                k = 0
                while k < filled and time.perf_counter() - t < 2 * st.max_s:
                    got = h.read(min(1000, filled - k))
                    k += got
                    if not got:
                        break
            else:
                k = h.read(filled)
            runs.append(k / (time.perf_counter() - t))
            cpu.append(k / max(1e-9, time.process_time() - c))
            if sum(k / r for r in runs if r) > 4 * st.max_s:
                break  # slow readers: fewer repeats, bounded time
        ok = k == filled if not consuming else None
        out.append(Result(name, "read", median(runs), "msg/s", note=_note(mod, "read"), ok=ok,
                          extra={"runs": runs, "messages": k, "filled": filled, "cpu_rate": median(cpu)}))
        if getattr(h, "read_batch", None) is not None:
            runs, cpu = [], []
            for _ in range(st.repeats):
                c = time.process_time()
                t = time.perf_counter()
                k = h.read_batch(filled)
                runs.append(k / (time.perf_counter() - t))
                cpu.append(k / max(1e-9, time.process_time() - c))
            out.append(Result(name, "read_batch", median(runs), "msg/s", ok=k == filled,
                              note="Stream.poll_data(1024): decoded data, one call per batch",
                              extra={"runs": runs, "messages": k, "cpu_rate": median(cpu)}))
        elif out[-1].value is not None:
            # a peer's (or the floor's) read is already its one bulk loop: the
            # batched row compares Plasmite's bulk read with that same figure
            r = out[-1]
            out.append(Result(name, "read_batch", r.value, "msg/s", ok=r.ok,
                              note="its read loop (no separate batch API)", extra=dict(r.extra)))
        return out
    finally:
        h.close()


def retained_plasmite(workdir: str, st: Settings) -> list[Result]:
    """Messages a 1 MiB pool keeps after wrapping several times."""
    mod = load("plasmite")
    h = mod.Handle(mod.create(workdir, "retained", size=st.retained_pool))
    try:
        n = 0
        t0 = time.perf_counter()
        target = 5 * st.retained_pool // 60
        while n < target and time.perf_counter() - t0 < st.fill_max_s:
            h.append_many(payloads(256, n))
            n += 256
        info = h.info()
        per = info.message_count / (info.file_size / MiB)
        return [Result("plasmite", "retained_per_mib", per, "msg/MiB",
                       note=f"{info.file_size} B pool after {n} appends",
                       extra={"message_count": info.message_count, "file_size": info.file_size})]
    finally:
        h.close()


def retained_floor(st: Settings) -> list[Result]:
    from bench import floor

    per = (MiB - floor.HDR) // floor.frame_bytes(len(payload_bytes()))
    return [Result("floor", "retained_per_mib", float(per), "msg/MiB", note="computed: 20-byte frame header + payload")]


# -- cross-process -----------------------------------------------------------------

def _run_queue_clock():
    """(fd, read) for this thread's cumulative time runnable but not running, in
    ns (/proc/thread-self/schedstat, about 2 µs a read), or (None, None) where the
    kernel does not expose it. Its growth between two receipts says how long the
    follower waited for a CPU after being woken."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return None, None

    def read() -> int:
        return int(os.pread(fd, 128, 0).split()[1])

    try:
        read()
    except (OSError, ValueError, IndexError):
        os.close(fd)
        return None, None
    return fd, read


def _follower_main(name, spec, max_s, ready, conn):
    mod = load(name)
    h = mod.Handle(spec)
    lats: list[int] = []
    queued: list[int] = []  # run-queue clock at each receipt
    rq_fd, rq_read = _run_queue_clock()
    cpu0 = wall0 = 0.0
    try:
        h.follow_start()
        ready.set()
        cpu0, wall0 = time.process_time(), time.monotonic()
        deadline = time.monotonic() + max_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            obj = h.follow_next(min(0.5, left))
            now = time.monotonic_ns()
            if obj is None:
                continue
            if obj.get("stop"):
                break
            lats.append(now - obj["t"])
            if rq_read is not None:  # after the timestamp: not part of the hand-off
                queued.append(rq_read())
    finally:
        # CPU the follower burned while waiting: spinning shows as ~100 %
        conn.send((lats, time.process_time() - cpu0, time.monotonic() - wall0, queued))
        h.close()
        if rq_fd is not None:
            os.close(rq_fd)


def latency(name: str, workdir: str, st: Settings) -> list[Result]:
    mod = load(name)
    spec = mod.create(workdir, "latency")
    ctx = mp_context()
    parent, child = ctx.Pipe(duplex=False)
    ready = ctx.Event()
    p = ctx.Process(target=_follower_main, args=(name, spec, st.lat_max_s + 15, ready, child), daemon=True)
    p.start()
    h = mod.Handle(spec)
    lats: list[int] = []
    queued: list[int] = []
    cpu_s = wall_s = 0.0
    try:
        if not ready.wait(30):
            return [Result(name, "latency_p50", None, "µs", higher_is_better=False, note="follower did not start")]
        time.sleep(0.05)
        app = h.append
        gap = st.lat_gap_s
        t_end = time.monotonic() + st.lat_max_s
        sent = 0
        for i in range(st.lat_n):
            app(payload(i, t=time.monotonic_ns()))
            sent += 1
            if time.monotonic() > t_end:
                break
            time.sleep(gap)
        app({"stop": True, "t": 0})
        try:
            if parent.poll(st.lat_max_s + 20):
                lats, cpu_s, wall_s, queued = parent.recv()
        except EOFError:  # the follower died; reported as nothing received
            pass
    finally:
        h.close()
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)
    warm = min(20, len(lats) // 10)
    samples = sorted(x / 1000 for x in lats[warm:])
    received_ok = len(lats) == sent
    cpu_pct = 100 * cpu_s / wall_s if wall_s else float("nan")
    note = _note(mod, "follow") or ("blocks" if name != "floor" else "spinning follower")
    note += f"; follower CPU {cpu_pct:.0f}%; {len(lats)}/{sent} received"
    extra = {"sent": sent, "received": len(lats), "follower_cpu_pct": cpu_pct,
             "samples": [x / 1000 for x in lats[warm:]][:5000]}
    if len(queued) == len(lats) and len(lats) > warm:
        # µs the follower spent runnable but not running since the previous receipt
        waits = [0.0] + [round((b - a) / 1000, 1) for a, b in zip(queued, queued[1:])]
        extra["run_queue_us"] = waits[warm:][:5000]
    return [
        Result(name, "latency_p50", percentile(samples, 0.5), "µs", False, note=note, ok=received_ok, extra=extra),
        Result(name, "latency_p99", percentile(samples, 0.99), "µs", False, note=note, ok=received_ok),
    ]


def _writer_main(name, spec, wid, n, max_s, ready, start, conn):
    mod = load(name)
    h = mod.Handle(spec)
    objs = [payload(i, w=wid) for i in range(n)]
    app = h.append
    ready.set()
    start.wait(60)
    t0 = time.monotonic_ns()
    end = time.monotonic() + max_s
    count = 0
    for o in objs:
        app(o)
        count += 1
        if count & 255 == 0 and time.monotonic() > end:
            break
    t1 = time.monotonic_ns()
    conn.send((count, t0, t1))
    h.close()


def two_writers(name: str, workdir: str, st: Settings) -> list[Result]:
    mod = load(name)
    spec = mod.create(workdir, "two")
    ctx = mp_context()
    start = ctx.Event()
    procs, pipes, readies = [], [], []
    for wid in (0, 1):
        a, b = ctx.Pipe(duplex=False)
        ev = ctx.Event()
        p = ctx.Process(target=_writer_main, args=(name, spec, wid, st.two_n, st.two_max_s, ev, start, b), daemon=True)
        p.start()
        procs.append(p)
        pipes.append(a)
        readies.append(ev)
    res = []
    try:
        for ev in readies:
            ev.wait(60)
        start.set()
        for a in pipes:
            try:
                if a.poll(st.two_max_s + 60):
                    res.append(a.recv())
            except EOFError:  # the writer died; reported below
                pass
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
    if len(res) != 2:
        return [Result(name, "two_writers", None, "msg/s", note="a writer did not report", ok=False)]
    total = sum(r[0] for r in res)
    dt = (max(r[2] for r in res) - min(r[1] for r in res)) / 1e9
    h = mod.Handle(spec)
    try:
        items = h.all_items()
    finally:
        h.close()
    seen = {0: [], 1: []}
    for it in items:
        if isinstance(it, dict) and it.get("w") in seen:
            seen[it["w"]].append(it["i"])
    lost = dup = disorder = 0
    for wid, (count, _t0, _t1) in enumerate(res):
        got = seen[wid]
        s = set(got)
        dup += len(got) - len(s)
        lost += len(set(range(count)) - s)
        disorder += sum(1 for a, b in zip(got, got[1:]) if b < a)
    ok = lost == 0 and dup == 0 and disorder == 0
    note = f"{total} msgs; lost {lost}, duplicated {dup}, out of order {disorder}"
    return [Result(name, "two_writers", total / dt if dt > 0 else None, "msg/s", ok=ok, note=note,
                   extra={"counts": [r[0] for r in res], "seconds": dt})]
