"""Small shared helpers: payloads, bounded timing loops, percentiles, processes.

Every loop in the benchmark is bounded both by a count and by a wall-clock budget,
so a slow system costs time, never a hang.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

MiB = 1 << 20

_encode = msgspec.json.encode


def payload(i: int, t: int | None = None, **extra: Any) -> dict:
    """A ~60-byte JSON object, the message every system stores."""
    d = {"i": i, "t": 1763700000000000000 if t is None else t, "kind": "sensor", "v": 21.5}
    if extra:
        d.update(extra)
    return d


def payload_bytes(i: int = 123456) -> bytes:
    return _encode(payload(i))


def payloads(n: int, start: int = 0) -> list[dict]:
    return [payload(start + k) for k in range(n)]


def mp_context():
    # spawn: workers open their own handles; nothing inherited from the parent
    return mp.get_context("spawn")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rate_loop(step: Callable[[], int], max_items: int, max_s: float) -> tuple[float, int]:
    """Call ``step`` (which does some items and returns how many) until
    ``max_items`` are done or ``max_s`` seconds have passed; return (items/s, items)."""
    done = 0
    t0 = time.perf_counter()
    while done < max_items:
        done += step()
        if time.perf_counter() - t0 >= max_s:
            break
    dt = time.perf_counter() - t0
    return (done / dt if dt > 0 else float("nan")), done


def measure(step: Callable[[], int], max_items: int, max_s: float, repeats: int) -> tuple[float, dict]:
    """``repeats`` bounded runs of ``step``; returns (median items/s, extra) where
    extra has every run and the same rate per CPU-second of this process
    ("cpu_rate"), which other load on the machine disturbs far less than wall
    time (meaningful for in-process work only, not for client/server peers)."""
    runs, cpu_runs = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        _rate, done = rate_loop(step, max_items, max_s)
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        runs.append(done / dt if dt > 0 else float("nan"))
        cpu_runs.append(done / dc if dc > 0 else float("nan"))
    return median(runs), {"runs": runs, "cpu_rate": median(cpu_runs),
                          "cpu_share": median(cpu_runs) and median(runs) / median(cpu_runs)}


def dir_bytes(path: str) -> int:
    total = 0
    if os.path.isfile(path):
        return os.path.getsize(path)
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, f))
    return total


@dataclass
class Result:
    """One measured figure."""

    system: str
    workload: str
    value: float | None
    unit: str
    higher_is_better: bool = True
    note: str = ""
    ok: bool | None = None  # correctness check where the workload has one
    extra: dict = field(default_factory=dict)  # p99, counts, samples...

    def to_dict(self) -> dict:
        return {
            "system": self.system,
            "workload": self.workload,
            "value": self.value,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "note": self.note,
            "ok": self.ok,
            "extra": self.extra,
        }


def scrub(text: str) -> str:
    """Drop this machine's paths from text that goes into the repository."""
    import tempfile

    subs = [
        (os.getcwd().rstrip("/") + "/", ""),
        (sys.prefix.rstrip("/") + "/", "<python>/"),
        (sys.base_prefix.rstrip("/") + "/", "<python>/"),
        (tempfile.gettempdir().rstrip("/") + "/", "<tmp>/"),
        (os.path.expanduser("~").rstrip("/") + "/", "~/"),
    ]
    for old, new in subs:
        if len(old) > 1:
            text = text.replace(old, new)
    return text


def installed(module: str) -> bool:
    """True when ``module`` is really installed: run from the repository root, a
    dist's folder (e.g. ``plasmite_cli/``) would otherwise pass as a namespace
    package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def missing(module: str, pip_name: str) -> str | None:
    """Why a peer cannot run (``module`` does not import), or None."""
    try:
        __import__(module)
    except ImportError:
        return f"{pip_name} is not installed (pip install {pip_name})"
    return None


def store_dir(workdir: str, prefix: str, purpose: str) -> dict:
    """A fresh directory for one peer's store: the spec its Handle reopens."""
    path = os.path.join(workdir, f"{prefix}-{purpose}")
    os.makedirs(path, exist_ok=True)
    return {"path": path}


def poll_take(take: Callable[[], Any], empty: type[BaseException], timeout_s: float, interval_s: float) -> Any:
    """A follower without wake-ups: ``take()`` every ``interval_s`` while it
    raises ``empty``; None once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return take()
        except empty:
            if time.monotonic() > deadline:
                return None
            time.sleep(interval_s)
