"""Plasmite's rows on the pure-Python path, for the column next to the
compiled one (the core workloads, `pls feed` from stdin and the HTTP rows; the
one-shot start-up and the file footprint do not depend on the path).

The core picks its path once, at import (``PLASMITE_PURE=1`` forces the pure
one), and the benchmark process has already imported the compiled path, so each
workload runs again in a child process started with that variable set; the
child's own processes (follower, writers, `pls`, the server) inherit it. The
child prints its results as JSON under the system name ``plasmite-pure``.

    python -m bench.pure TASK WORKDIR SETTINGS_JSON ARGS_JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

from bench import workloads as W
from bench.util import Result

SYSTEM = "plasmite-pure"


def _cli_feed(workdir, st, n):
    from bench import cli_rows

    return cli_rows.cli_feed(workdir, n, 120.0)


def _http(workdir, st, n, max_s, tail_n):
    from bench import http_rows

    return http_rows.http_rows(workdir, n, max_s, tail_n)


# the runner's task labels -> fn(workdir, settings, *args)
TASKS = {
    "append": lambda wd, st: W.append_one("plasmite", wd, st),
    "batch": lambda wd, st: W.append_batch("plasmite", wd, st),
    "read/get": lambda wd, st: W.read_get("plasmite", wd, st),
    "hand-off": lambda wd, st: W.latency("plasmite", wd, st),
    "two writers": lambda wd, st: W.two_writers("plasmite", wd, st),
    "feed stdin": _cli_feed,
    "append+tail": _http,
}


def run(task: str, workdir: str, st: W.Settings, *args, timeout_s: float = 300.0) -> list[Result]:
    """Run one task in a child process on the pure path; its results."""
    wd = os.path.join(workdir, "pure")
    os.makedirs(wd, exist_ok=True)
    env = dict(os.environ, PLASMITE_PURE="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `-m bench.pure` imports from
    settings = json.dumps(asdict(st))
    out = subprocess.run([sys.executable, "-m", "bench.pure", task, wd, settings, json.dumps(args)], env=env,
                         cwd=root, capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pure-path child exited {out.returncode}: {tail}")
    return [Result(**r) for r in json.loads(out.stdout.strip().splitlines()[-1])]  # the last line: the results


def main(argv: list[str]) -> int:
    task, workdir, settings, args = argv
    from bench.plasmite_adapter import compiled_parts

    if compiled_parts():  # the variable did not take: refuse to mislabel the figures
        print(f"compiled parts still in use: {', '.join(compiled_parts())}", file=sys.stderr)
        return 2
    results = TASKS[task](workdir, W.Settings(**json.loads(settings)), *json.loads(args))
    for r in results:
        r.system = SYSTEM
    print(json.dumps([r.to_dict() for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
