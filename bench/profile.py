"""``python -m bench --profile``: pyinstrument call trees of Plasmite's hot loops
(append per call, append_many, decoded read, raw read, get by seq), written next
to the results so a missed target comes with the profile that explains it."""

from __future__ import annotations

import os
import random
import time

from bench.util import payloads, scrub


def _loop(fn, max_s: float) -> int:
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        n += fn()
    return n


def run(workdir: str, st, out_dir: str, max_s: float = 2.0) -> list[str]:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("profile: pyinstrument is not installed (pip install pyinstrument); skipped")
        return []
    from bench import plasmite_adapter as P

    h = P.Handle(P.create(workdir, "profile"))
    files = []
    try:
        objs = payloads(500)
        batch = payloads(st.batch)
        h.fill(payloads(50_000))
        oldest, newest = h.pool.bounds()
        keys = [random.randint(oldest, newest) for _ in range(2000)]
        pool = h.pool

        def append():
            for o in objs:
                h.append(o)
            return len(objs)

        def many():
            h.append_many(batch)
            return len(batch)

        def read():
            return h.read(50_000)

        def read_raw():
            return h.read_raw(50_000)

        def get():
            for k in keys:
                pool.get(k).data
            return len(keys)

        for name, fn in [("append", append), ("append_many", many), ("read", read),
                         ("read_raw", read_raw), ("get", get)]:
            fn()
            prof = Profiler(interval=0.0002)
            prof.start()
            n = _loop(fn, max_s)
            prof.stop()
            path = os.path.join(out_dir, f"profile-{name}.txt")
            with open(path, "w") as f:
                f.write(f"# Plasmite {name}: {n} ops in ~{max_s:.0f} s under pyinstrument (slower than unprofiled)\n")
                text = prof.output_text(unicode=True, color=False, show_all=False)
                text = "\n".join(line for line in text.splitlines() if not line.startswith("Profile at "))
                f.write(scrub(text) + "\n")
            files.append(path)
    finally:
        h.close()
    return files
