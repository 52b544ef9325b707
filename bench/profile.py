"""``python -m bench --profile``: pyinstrument call trees of Plasmite's hot loops
(append per call, append_many, decoded read, raw read, get by seq) and, when
py-spy is installed, a sampled profile of ``pls feed`` reading NDJSON from stdin,
written next to the results so a missed target comes with the profile that
explains it."""

from __future__ import annotations

import collections
import os
import random
import shutil
import subprocess
import time

from bench.util import payloads, scrub


def _loop(fn, max_s: float) -> int:
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        got = fn()
        if not got:  # nothing to do (e.g. no batch API in this core)
            break
        n += got
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
        pool = h.pool
        keys: list[int] = []

        def append():
            for o in objs:
                h.append(o)
            return len(objs)

        def many():
            h.append_many(batch)
            return len(batch)

        def read():
            return h.read(50_000)

        def read_batch():
            return h.read_batch(50_000)

        def read_raw():
            return h.read_raw(50_000)

        def read_raw_batch():
            return h.read_raw_batch(50_000) or 0

        def get():
            if not keys:  # drawn now: the append profiles before this one evict the oldest seqs
                oldest, newest = pool.bounds()
                keys.extend(random.randint(oldest, newest) for _ in range(2000))
            for k in keys:
                pool.get(k).data
            return len(keys)

        for name, fn in [("append", append), ("append_many", many), ("read", read), ("read_batch", read_batch),
                         ("read_raw", read_raw), ("read_raw_batch", read_raw_batch), ("get", get)]:
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
    return files + run_cli_feed(workdir, out_dir) + run_cli_oneshot_imports(workdir, out_dir)


def summarize_raw(raw_path: str, top: int = 25) -> str:
    """py-spy's raw (collapsed) stacks -> self and inclusive shares per frame."""
    selfc: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(n)
            total += n
            frames = stack.split(";")
            selfc[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    if not total:
        return "no samples\n"
    out = [f"samples: {total}", "", "self time (top frames):"]
    out += [f"{100 * n / total:5.1f}%  {fr}" for fr, n in selfc.most_common(top)]
    out += ["", "inclusive time (top frames):"]
    out += [f"{100 * n / total:5.1f}%  {fr}" for fr, n in incl.most_common(top + 15)]
    return "\n".join(out) + "\n"


def run_cli_feed(workdir: str, out_dir: str, n: int = 200_000) -> list[str]:
    """Sample ``pls feed POOL`` < NDJSON with py-spy (skipped when absent)."""
    import msgspec

    from bench.cli_rows import _pool, find_cli
    from bench.util import payload

    spy = shutil.which("py-spy")
    cli, _ = find_cli()
    if not spy or not cli:
        return []
    path = _pool(workdir, "profile-feed", 128 << 20)
    data = b"".join(msgspec.json.encode(payload(i)) + b"\n" for i in range(n))
    raw = os.path.join(workdir, "feed.raw")
    try:
        subprocess.run([spy, "record", "-o", raw, "-f", "raw", "-r", "500", "--", cli, "feed", path],
                       input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    except (subprocess.TimeoutExpired, OSError):
        return []
    if not os.path.exists(raw):
        return []
    dest = os.path.join(out_dir, "profile-cli-feed.txt")
    with open(dest, "w") as f:
        f.write(f"# `pls feed POOL` < {n} NDJSON lines, sampled by py-spy at 500 Hz (start-up included)\n")
        f.write(scrub(summarize_raw(raw)))
    return [dest]


def run_cli_oneshot_imports(workdir: str, out_dir: str, top: int = 30) -> list[str]:
    """``python -X importtime pls feed POOL '{..}'``: where one-shot start-up goes."""
    import msgspec

    from bench.cli_rows import _pool, cli_python, find_cli
    from bench.util import payload

    cli, _ = find_cli()
    if not cli:
        return []
    py = cli_python(cli)
    path = _pool(workdir, "profile-oneshot", 1 << 20)
    msg = msgspec.json.encode(payload(1)).decode()
    err = b""
    for _ in range(2):  # the first run may still write .pyc files
        try:
            err = subprocess.run([py, "-X", "importtime", cli, "feed", path, msg], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, timeout=60).stderr
        except (subprocess.TimeoutExpired, OSError):
            return []
    rows = []
    for line in err.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:"):].split("|")
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        rows.append((cum_us, self_us, parts[2].rstrip()))
    if not rows:
        return []
    top_level = sum(c for c, _s, name in rows if not name.startswith("  "))
    dest = os.path.join(out_dir, "profile-cli-oneshot.txt")
    with open(dest, "w") as f:
        f.write(f"# `{os.path.basename(cli)} feed POOL '{{..}}'` under python -X importtime (second run)\n")
        f.write(f"# total import time of top-level imports: {top_level / 1000:.1f} ms\n")
        f.write("#  cumulative ms   self ms   module (indent = imported by the line above)\n")
        for cum, self_, name in sorted(rows, reverse=True)[:top]:
            f.write(f"{cum / 1000:12.1f} {self_ / 1000:9.1f}   {name}\n")
    return [dest]
