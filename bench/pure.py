"""Plasmite's core rows on the pure-Python path, for the column next to the
compiled one.

The core picks its path once, at import (``PLASMITE_PURE=1`` forces the pure
one), and the benchmark process has already imported the compiled path, so each
workload runs again in a child process started with that variable set; the
child's own worker processes (follower, writers) inherit it. The child prints
its results as JSON under the system name ``plasmite-pure``.

    python -m bench.pure WORKLOAD WORKDIR SETTINGS_JSON
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
WORKLOADS = {"append": W.append_one, "batch": W.append_batch, "read/get": W.read_get,
             "hand-off": W.latency, "two writers": W.two_writers}


def run(workload: str, workdir: str, st: W.Settings, timeout_s: float = 300.0) -> list[Result]:
    """Run one workload in a child process on the pure path; its results."""
    wd = os.path.join(workdir, "pure")
    os.makedirs(wd, exist_ok=True)
    env = dict(os.environ, PLASMITE_PURE="1")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    settings = json.dumps(asdict(st))
    out = subprocess.run([sys.executable, "-m", "bench.pure", workload, wd, settings], env=env,
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pure-path child exited {out.returncode}: {tail}")
    return [Result(**r) for r in json.loads(out.stdout)]


def main(argv: list[str]) -> int:
    workload, workdir, settings = argv
    from bench.plasmite_adapter import compiled_parts

    if compiled_parts():  # the variable did not take: refuse to mislabel the figures
        print(f"compiled parts still in use: {', '.join(compiled_parts())}", file=sys.stderr)
        return 2
    results = WORKLOADS[workload]("plasmite", workdir, W.Settings(**json.loads(settings)))
    for r in results:
        r.system = SYSTEM
    print(json.dumps([r.to_dict() for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
