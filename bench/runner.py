"""The ``python -m bench`` command: build the task list, run it under a progress
bar, print the tables, write docs/benchmarks.md, results.json and the plots."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import traceback

from bench import workloads as W
from bench.util import Result, scrub

GROUPS = ("core", "peers", "cli", "http")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Plasmite against a raw mmap+flock floor and the alternatives "
        "(SQLite, persist-queue, diskcache, litequeue, Redis Streams, JSONL+flock) in one run.",
    )
    ap.add_argument("--quick", action="store_true", help="small counts and short budgets (a smoke run, ~1-2 min)")
    ap.add_argument("--only", default="", metavar="GROUPS",
                    help="comma list of groups to run: core (floor+Plasmite), peers, cli, http; default all")
    ap.add_argument("--peers", default="", metavar="NAMES",
                    help="comma list of peers to run (default all): " + ", ".join(W.PEERS))
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="directory for plots and results.json; the report goes to DIR.md (default "
                    "docs/benchmarks; a --quick run writes nothing unless --out is given)")
    ap.add_argument("--no-write", action="store_true", help="print the tables only; write no files")
    ap.add_argument("--no-pure", action="store_true",
                    help="skip the pure-Python column (Plasmite's core rows again with PLASMITE_PURE=1)")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ap.add_argument("--profile", dest="profile", action="store_true", default=None,
                    help="profile Plasmite's hot loops with pyinstrument into DIR/profile-*.txt "
                    "(default on for full runs that write files, off with --quick)")
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profiles")
    ap.add_argument("--render", default=None, metavar="RESULTS_JSON",
                    help="measure nothing: re-render the report and plots from a results.json of an earlier run")
    ap.add_argument("--tmp", default=None, metavar="DIR", help="where the stores go (default: a fresh temp dir)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the stores afterwards")
    ns = ap.parse_args(argv)
    groups = [g.strip() for g in ns.only.split(",") if g.strip()] or list(GROUPS)
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {', '.join(bad)}; choose from {', '.join(GROUPS)}")
    ns.groups = groups
    if ns.out is None:
        ns.out = "docs/benchmarks"
        if ns.quick:
            ns.no_write = True  # a smoke run never overwrites the committed results
    if ns.profile is None:
        ns.profile = not ns.quick and not ns.no_write
    peers = [p.strip() for p in ns.peers.split(",") if p.strip()] or list(W.PEERS)
    bad = [p for p in peers if p not in W.PEERS]
    if bad:
        ap.error(f"unknown peer(s) {', '.join(bad)}; choose from {', '.join(W.PEERS)}")
    ns.peer_list = peers
    return ns


def _progress(total: int):
    try:
        from tqdm import tqdm

        if not sys.stderr.isatty():
            raise ImportError  # a log gets one line per task instead of bar redraws
        return tqdm(total=total, unit="task", dynamic_ncols=True, file=sys.stderr)
    except ImportError:  # still bounded and still reporting
        class Bar:
            n = 0

            def set_description(self, d):
                print(f"[{self.n}/{total}] {d}", file=sys.stderr, flush=True)

            def update(self, k=1):
                self.n += k

            def write(self, s):
                print(s, file=sys.stderr)

            def close(self):
                pass

        return Bar()


def _write(ns, R, st, meta, elapsed, skipped, cmd, profile_files=None) -> None:
    from bench import report

    out_dir = ns.out.rstrip("/")
    os.makedirs(out_dir, exist_ok=True)
    md_path = out_dir + ".md"
    plots = []
    if not ns.no_plots:
        try:
            plots = report.plot(R, out_dir)
        except ImportError:
            skipped.append("plots: matplotlib is not installed (pip install matplotlib)")
    analysis = ""
    here = os.path.dirname(os.path.abspath(__file__))
    apath = os.path.join(here, "analysis.md")
    if os.path.exists(apath) and not meta.get("quick"):
        with open(apath) as f:
            analysis = f.read()
    if profile_files is None:  # re-rendering: the profiles written next to that run's results
        profile_files = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir)
                               if f.startswith("profile-") and f.endswith(".txt"))
    if profile_files and not meta.get("quick"):
        analysis += "\n\nProfiles of this run: " + ", ".join(
            f"[`{os.path.basename(p)}`]({os.path.relpath(p, os.path.dirname(md_path) or '.')})" for p in profile_files)
    json_path = os.path.join(out_dir, "results.json")
    meta = dict(meta, elapsed_s=elapsed, command=cmd, skipped=skipped)
    text = report.markdown(R, st, meta, elapsed, plots, skipped, analysis, os.path.dirname(md_path) or ".", cmd,
                           json_path)
    with open(md_path, "w") as f:
        f.write(scrub(text))
    if not ns.render:
        report.write_json(R, meta, st, json_path)
    print(f"wrote {md_path}" + ("" if ns.render else f", {json_path}") + (f" and {len(plots)} plots" if plots else ""))


def render(ns) -> int:
    import json

    from bench import report

    with open(ns.render) as f:
        data = json.load(f)
    results = [Result(**r) for r in data["results"]]
    st = W.Settings(**data["settings"])
    meta = data["meta"]
    if ns.out is None or ns.out == "docs/benchmarks":
        ns.out = os.path.dirname(os.path.abspath(ns.render))
    R = report.Results(results, meta.get("compiled"))
    print(report.print_tables(R))
    _write(ns, R, st, meta, meta.get("elapsed_s", 0.0), list(meta.get("skipped", [])),
           meta.get("command", "python -m bench"))
    return 0


def main(argv=None) -> int:
    ns = parse(argv)
    if ns.render:
        return render(ns)
    st = W.Settings.quick() if ns.quick else W.Settings()
    t_start = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    from bench.report import loadavg

    load_start = loadavg()
    workdir = ns.tmp or tempfile.mkdtemp(prefix="plasmite-bench-")
    os.makedirs(workdir, exist_ok=True)
    results: list[Result] = []
    skipped: list[str] = []

    systems: list[str] = []
    if "core" in ns.groups:
        systems.append("floor")
        why = W.load("plasmite").available()
        if why:
            skipped.append(f"Plasmite core rows: {why}")
        else:
            systems.append("plasmite")
    if "peers" in ns.groups:
        for p in ns.peer_list:
            why = W.load(p).available()
            if why:
                skipped.append(f"{p}: {why}")
            else:
                systems.append(p)
    plasmite_ok = W.load("plasmite").available() is None
    pure = False  # a second Plasmite column: the same rows on the pure-Python path
    if plasmite_ok and not ns.no_pure:
        from bench.plasmite_adapter import compiled_parts

        if compiled_parts():
            pure = True
        else:
            skipped.append("pure-Python column: the compiled path is not in use here (plasmite-speedups without "
                           "its C extension, or PLASMITE_PURE set), so the Plasmite column is the pure path")

    from bench import pure as P

    tasks: list[tuple[str, callable]] = []
    per_system = [("append", W.append_one), ("batch", W.append_batch), ("read/get", W.read_get),
                  ("hand-off", W.latency), ("two writers", W.two_writers)]
    # workload by workload (floor, Plasmite, then the peers back to back), so a
    # change in machine load between tasks skews a ratio as little as possible
    for label, fn in per_system:
        for s in systems:
            tasks.append((f"{s}: {label}", lambda fn=fn, s=s: fn(s, workdir, st)))
            if s == "plasmite" and pure:
                tasks.append((f"plasmite, pure: {label}", lambda label=label: P.run(label, workdir, st)))
    if "floor" in systems:
        tasks.append(("floor: retained", lambda: W.retained_floor(st)))
    if "plasmite" in systems:
        tasks.append(("plasmite: retained", lambda: W.retained_plasmite(workdir, st)))
    if "cli" in ns.groups:
        from bench import cli_rows

        if not plasmite_ok:
            skipped.append("CLI rows: need the core (pip install ./plasmite_core)")
        elif cli_rows.find_cli()[0] is None:
            skipped.append(f"CLI rows: {cli_rows.find_cli()[1]}")
        else:
            n_feed = 20_000 if ns.quick else 200_000
            tasks.append(("cli: feed stdin", lambda: cli_rows.cli_feed(workdir, n_feed, 120.0)))
            if pure:
                tasks.append(("cli, pure: feed stdin", lambda: P.run("feed stdin", workdir, st, n_feed)))
            tasks.append(("cli: one-shot", lambda: cli_rows.cli_oneshot(workdir, 5 if ns.quick else 15)))
    if "http" in ns.groups:
        from bench import http_rows

        why = http_rows.available() if plasmite_ok else "need the core"
        if why:
            skipped.append(f"HTTP rows: {why}")
        else:
            n_http, tail_n = (2_000, 10_000) if ns.quick else (20_000, 100_000)
            http_s = 1.0 if ns.quick else 3.0
            tasks.append(("http: append+tail", lambda: http_rows.http_rows(workdir, n_http, http_s, tail_n)))
            if pure:
                tasks.append(("http, pure: append+tail", lambda: P.run("append+tail", workdir, st, n_http, http_s, tail_n)))

    redis_started = False
    bar = _progress(len(tasks))
    try:
        if "redis" in systems or "plasmite-redis" in systems:  # one server for both
            from bench.peers import redis_streams

            try:
                info = redis_streams.start_server(workdir)
                redis_started = True
                bar.write(f"redis-server pid {info['pid']} on 127.0.0.1:{info['port']}")
            except Exception as exc:
                skipped.append(f"redis: could not start redis-server ({exc})")
                tasks = [t for t in tasks if not t[0].startswith(("redis:", "plasmite-redis:"))]
        for label, fn in tasks:
            bar.set_description(label)
            try:
                results.extend(fn())
            except Exception as exc:  # one broken system must not sink the run
                bar.write(f"!! {label} failed: {type(exc).__name__}: {exc}")
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
                skipped.append(f"{label}: failed with {type(exc).__name__}: {str(exc)[:160]}")
            bar.update(1)
    finally:
        bar.close()
        if redis_started:
            from bench.peers import redis_streams

            redis_streams.stop_server()

    profile_files = []
    if ns.profile and "plasmite" in systems and not ns.no_write:
        from bench import profile

        os.makedirs(ns.out, exist_ok=True)
        profile_files = profile.run(workdir, st, ns.out)

    from bench import report

    compiled = []
    if plasmite_ok:
        from bench.plasmite_adapter import compiled_parts

        compiled = compiled_parts()
    R = report.Results(results, compiled)
    print()
    print(report.print_tables(R))
    if skipped:
        print("Skipped:")
        for s in skipped:
            print(f"  - {s}")
    elapsed = time.perf_counter() - t_start
    print(f"\nfinished in {elapsed / 60:.1f} min")

    if not ns.no_write:
        meta = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": report.machine(),
                "compiled": compiled,
                "quick": ns.quick, "groups": ns.groups, "load_start": load_start}
        cmd = "python -m bench" + ("".join(" " + a for a in (argv if argv is not None else sys.argv[1:])))
        _write(ns, R, st, meta, elapsed, skipped, cmd, profile_files)

    if not ns.keep_tmp and not ns.tmp:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
