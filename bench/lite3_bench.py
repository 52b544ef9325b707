"""Lite3 (pure Python) against msgspec JSON on the same documents.

For a few document shapes it times encode (Python value -> bytes), decode
(bytes -> Python value), to_json (Lite3 only: bytes -> JSON text) and a
single-field lookup (Lite3 reads one member in place; JSON must decode the
whole document), with the standard library's json for scale. Prints a
markdown table of microseconds per operation.

    python bench/lite3_bench.py [--quick]

Each figure is the best of several bounded timing rounds that interleave the
operations (count and wall-clock budget), so a slow machine costs time, never
a hang.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

import msgspec

try:
    from plasmite_codecs import lite3
except ImportError:  # running from a checkout without installing
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.join(here, "..", "plasmite_codecs", "src"), os.path.join(here, "..", "plasmite_core", "src")]
    from plasmite_codecs import lite3


def shapes() -> list[tuple[str, Any, tuple]]:
    small = {"i": 123456, "t": 1763700000000000000, "kind": "sensor", "v": 21.5}
    message = {"meta": {"tags": ["deploy", "prod"]},
               "data": {"from": "alice", "msg": "hello", "seq": 42, "ok": True}}
    event = {
        "event": "deploy", "service": "api-gateway", "version": "2.14.3", "ok": True,
        "duration_ms": 1834, "ratio": 0.75, "error": None, "region": "eu-west-1",
        "host": {"name": "web-03", "pid": 31337, "cpu": [0.5, 0.25, 0.125]},
        "steps": [{"name": "build", "ms": 800}, {"name": "test", "ms": 900}, {"name": "ship", "ms": 134}],
        "labels": {"team": "infra", "tier": "1"},
    }
    wide = {f"field_{i:03d}": i * 7 for i in range(200)}
    wide["target"] = "found"
    big_array = {"points": [[i, i * 0.5, f"p{i}"] for i in range(300)]}
    text = {"title": "log line", "body": "x" * 4000, "level": "info"}
    return [
        ("small (4 keys, ~60 B JSON)", small, ("kind",)),
        ("message envelope", message, ("data", "msg")),
        ("event (11 keys, nested)", event, ("host", "pid")),
        ("wide (201 keys)", wide, ("target",)),
        ("array 300x3", big_array, ("points", 150, 2)),
        ("4 KB string", text, ("level",)),
    ]


# CPU time of this process: on a shared box, time spent descheduled while
# other work runs is not charged to the operation being measured.
_clock = time.process_time


def _calibrate(fn: Callable[[], Any], target_s: float) -> int:
    """Calls per round so that one round takes about target_s."""
    n = 1
    while True:
        t0 = _clock()
        for _ in range(n):
            fn()
        dt = _clock() - t0
        if dt > 0.01 or n >= 1 << 20:
            return max(1, int(n * target_s / max(dt, 1e-9)))
        n *= 4


def bench_all(fns: dict[str, Callable[[], Any]], budget_s: float, rounds: int = 10) -> dict[str, float]:
    """Best per-call time (µs) of each function; rounds interleave the functions
    so that a burst of load on the machine hits them all alike."""
    per_round = {k: _calibrate(f, budget_s / rounds) for k, f in fns.items()}
    best = {k: float("inf") for k in fns}
    deadline = time.perf_counter() + budget_s * len(fns) * 3
    for _ in range(rounds):
        for k, f in fns.items():
            n = per_round[k]
            t0 = _clock()
            for _ in range(n):
                f()
            best[k] = min(best[k], (_clock() - t0) / n * 1e6)
        if time.perf_counter() > deadline:
            break
    return best


def json_lookup(raw: bytes, path: tuple) -> Any:
    v = msgspec.json.decode(raw)
    for p in path:
        v = v[p]
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing budget")
    args = ap.parse_args(argv)
    budget = 0.15 if args.quick else 0.5
    jenc, jdec = msgspec.json.encode, msgspec.json.decode

    rows = []
    for name, doc, path in shapes():
        raw = jenc(doc)
        buf = lite3.encode(doc)
        assert lite3.decode(buf) == jdec(jenc(lite3.decode(buf)))
        assert lite3.lookup(buf, path) == json_lookup(raw, path)
        r = {"shape": name, "json_B": len(raw), "lite3_B": len(buf)}
        r.update(bench_all({
            "enc_l3": lambda: lite3.encode(doc),
            "enc_js": lambda: jenc(doc),
            "enc_std": lambda: json.dumps(doc, separators=(",", ":")),
            "fromjson_l3": lambda: lite3.from_json(raw),
            "dec_l3": lambda: lite3.decode(buf),
            "dec_js": lambda: jdec(raw),
            "dec_std": lambda: json.loads(raw),
            "tojson_l3": lambda: lite3.to_json(buf),
            "look_l3": lambda: lite3.lookup(buf, path),
            "look_js": lambda: json_lookup(raw, path),
        }, budget))
        rows.append(r)

    print(f"Python {sys.version.split()[0]}, msgspec {msgspec.__version__}; CPU microseconds per operation (best of 10 rounds);")
    print("lookup: Lite3 lookup() vs msgspec.json.decode() then indexing")
    print()
    hdr = ("shape", "JSON B", "Lite3 B", "enc L3", "enc msgspec", "enc stdlib", "from_json L3",
           "dec L3", "dec msgspec", "dec stdlib", "to_json L3", "lookup L3", "lookup msgspec", "lookup L3/msgspec")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['json_B']} | {r['lite3_B']} | {r['enc_l3']:.1f} | {r['enc_js']:.2f} | "
            f"{r['enc_std']:.1f} | {r['fromjson_l3']:.1f} | {r['dec_l3']:.1f} | {r['dec_js']:.2f} | "
            f"{r['dec_std']:.1f} | {r['tojson_l3']:.1f} | "
            f"{r['look_l3']:.2f} | {r['look_js']:.2f} | {r['look_l3'] / r['look_js']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
