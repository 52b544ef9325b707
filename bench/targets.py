"""DESIGN.md's performance targets, as data.

A target is either absolute (``value``) or a multiple of the floor figure measured
in the same run (``floor``); ``higher`` says which way is better.  The
approximations in ``text`` are DESIGN.md's, from its reference box.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    text: str
    higher: bool = True
    value: float | None = None  # absolute threshold
    floor: float | None = None  # multiple of the same-run floor figure


TARGETS: dict[str, Target] = {
    "append": Target("≥ 0.8 × floor (≈250k)", floor=0.8),
    "append_many": Target("≥ 1.0 × floor batch (≈500k)", floor=1.0),
    "read": Target("≥ 1.0 × floor decoded read", floor=1.0),
    "read_batch": Target("≥ 1.0 × floor decoded read", floor=1.0),
    "read_raw": Target("≥ 1,000,000 msg/s", value=1_000_000),
    "read_raw_batch": Target("≥ 1,000,000 msg/s", value=1_000_000),
    "get": Target("≥ 300,000 /s", value=300_000),
    "latency_p50": Target("≤ 150 µs", higher=False, value=150),
    "latency_p99": Target("≤ 1,000 µs", higher=False, value=1000),
    "two_writers": Target("≥ 1.0 × floor two writers (≈135k)", floor=1.0),
    "retained_per_mib": Target("≥ 8,000", value=8000),
    "cli_feed": Target("≥ 150,000 msg/s", value=150_000),
    "cli_oneshot": Target("≤ 3 × bare `python -c pass` in a plain venv", higher=False, floor=3.0),
}

# what each workload means, in the order the tables show them
WORKLOADS: list[tuple[str, str]] = [
    ("append", "append, one call per message (~60 B JSON, durability fast)"),
    ("append_json", "append_json, pre-encoded bytes, one per call"),
    ("append_many", "append in batches (one lock per batch)"),
    ("read", "read back, decoded, one next() per message"),
    ("read_batch", "read back, decoded, in batches"),
    ("read_raw", "read back, raw JSON envelopes"),
    ("read_raw_batch", "read back, raw JSON envelopes in batches"),
    ("get", "get by seq/key, random retained"),
    ("latency_p50", "writer → follower (other process), p50"),
    ("latency_p99", "writer → follower (other process), p99"),
    ("two_writers", "two writer processes at once, together"),
    ("retained_per_mib", "messages retained per MiB of file"),
    ("cli_feed", "`pls feed POOL` from NDJSON stdin"),
    ("cli_oneshot", "one-shot `pls feed POOL '{..}'` wall time"),
    ("http_append", "HTTP append, one keep-alive client"),
    ("remote_tail", "HTTP remote tail (JSONL)"),
]


SHORT: dict[str, str] = {
    "append": "append 1/call",
    "append_json": "append_json 1/call",
    "append_many": "append batch",
    "read": "read decoded",
    "read_batch": "read decoded, batched",
    "read_raw": "read raw JSON",
    "read_raw_batch": "read raw JSON, batched",
    "get": "get by key",
    "latency_p50": "hand-off p50 µs",
    "latency_p99": "hand-off p99 µs",
    "two_writers": "2 writers",
    "retained_per_mib": "msgs per MiB",
    "cli_feed": "pls feed stdin",
    "cli_oneshot": "pls one-shot ms",
    "http_append": "HTTP append",
    "remote_tail": "remote tail",
}


def threshold(workload: str, floor_value: float | None) -> float | None:
    t = TARGETS.get(workload)
    if t is None:
        return None
    if t.value is not None:
        return t.value
    if t.floor is not None and floor_value:
        return t.floor * floor_value
    return None


def verdict(workload: str, value: float | None, floor_value: float | None) -> str:
    """'met', 'MISSED', 'n/a' (no target) or 'not measured'."""
    t = TARGETS.get(workload)
    if t is None:
        return ""
    if value is None:
        return "not measured"
    thr = threshold(workload, floor_value)
    if thr is None:
        return "no floor"
    ok = value >= thr if t.higher else value <= thr
    return "met" if ok else "MISSED"
