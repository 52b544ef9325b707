"""Turn results into the printed table, docs/benchmarks.md, results.json and PNG
plots (matplotlib, Agg).  Ratios are always Plasmite / other; a row says whether
higher or lower is better, so a ratio reads the same way as the figure."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
from dataclasses import asdict
from importlib import metadata

from bench.targets import SHORT, TARGETS, WORKLOADS, threshold, verdict
from bench.util import Result
from bench.workloads import PEERS, load

LABELS = {
    "floor": "floor",
    "plasmite": "Plasmite",
    "plasmite-pure": "Plasmite, pure Python",
    "sqlite": "SQLite WAL",
    "persist-queue": "persist-queue",
    "diskcache": "diskcache",
    "litequeue": "litequeue",
    "redis": "Redis Streams",
    "plasmite-redis": "Plasmite on Redis",
    "jsonl": "JSONL+flock",
}


def fmt(v: float | None, unit: str) -> str:
    if v is None or v != v:
        return "n/a"
    if unit in ("msg/s", "get/s", "req/s"):
        if v >= 1e6:
            return f"{v / 1e6:.2f}M"
        if v >= 1e3:
            return f"{v / 1e3:.1f}k"
        return f"{v:.0f}"
    if unit == "µs":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if unit == "ms":
        return f"{v:.1f}"
    return f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b or a != a or b != b:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


class Results:
    def __init__(self, results: list[Result], compiled: list[str] | None = None):
        self.all = results
        self.by = {(r.system, r.workload): r for r in results}
        # what ran compiled in the Plasmite column (None: not recorded)
        self.compiled = compiled
        self.has_pure = any(r.system == "plasmite-pure" for r in results)

    @property
    def plabel(self) -> str:
        """The heading of the Plasmite column: which path it measured."""
        if self.compiled:
            return "Plasmite, compiled"
        return "Plasmite, pure Python" if self.compiled == [] else "Plasmite"

    def get(self, system: str, workload: str) -> Result | None:
        return self.by.get((system, workload))

    def value(self, system: str, workload: str) -> float | None:
        r = self.get(system, workload)
        return None if r is None else r.value

    def workloads(self) -> list[tuple[str, str]]:
        present = {r.workload for r in self.all}
        return [(w, d) for w, d in WORKLOADS if w in present]

    def peers(self) -> list[str]:
        present = {r.system for r in self.all}
        return [p for p in PEERS if p in present]


# -- rows ----------------------------------------------------------------------------

def main_rows(R: Results) -> list[list[str]]:
    rows = []
    for w, desc in R.workloads():
        p = R.get("plasmite", w)
        unit = (p.unit if p else None) or next((r.unit for r in R.all if r.workload == w), "")
        fv = R.value("floor", w)
        pv = p.value if p else None
        t = TARGETS.get(w)
        thr = threshold(w, fv)
        tgt = t.text if t else ""
        if t and t.floor and thr:
            tgt += f" = {fmt(thr, unit)}"
        status = verdict(w, pv, fv)
        if p is not None and p.ok is False:
            status = (status + ", CHECK FAILED").strip(", ")
        better = "" if not unit else ("↓" if unit in ("µs", "ms") else "↑")
        note = p.note if p else "not run"
        if w == "latency_p99" and p is not None:
            note = slow_bursts(R.get("plasmite", "latency_p50")) or note
        fr = R.get("floor", w)
        cpu = ratio(p.extra.get("cpu_rate") if p else None, fr.extra.get("cpu_rate") if fr else None)
        row = [desc, f"{unit} {better}", fmt(pv, unit), fmt(fv, unit), ratio(pv, fv), cpu]
        if R.has_pure:
            q = R.get("plasmite-pure", w)
            qv = q.value if q else None
            cell = fmt(qv, unit) if q else "–"
            if q is not None and q.ok is False:
                cell += " CHECK FAILED"
            row += [cell, ratio(qv, fv) if q else "–"]
        rows.append(row + [tgt, status, note])
    return rows


def main_head(R: Results) -> list[str]:
    head = ["figure", "unit", R.plabel, "floor", "Plasmite/floor", "same, per CPU-s"]
    if R.has_pure:
        head += ["pure Python", "pure/floor"]
    return head + ["DESIGN.md target", "status", "note"]


def slow_bursts(r: Result | None, limit_us: float = 1000.0) -> str:
    """How many hand-offs took over 1 ms, and in how many runs of consecutive
    messages: bursts mean the follower was off-CPU for a while, then caught up.
    With the follower's run-queue clock, also how many runs began with it
    woken but waiting for a CPU (other work held both cores)."""
    if r is None or not r.extra.get("samples"):
        return ""
    xs = r.extra["samples"]
    slow = [i for i, x in enumerate(xs) if x > limit_us]
    if not slow:
        return f"none of {len(xs)} hand-offs over 1 ms"
    starts = [i for k, i in enumerate(slow) if k == 0 or slow[k - 1] != i - 1]
    note = f"{len(slow)} of {len(xs)} hand-offs over 1 ms, in {len(starts)} runs of consecutive messages"
    rq = r.extra.get("run_queue_us")
    if rq and len(rq) == len(xs):
        queued = sum(1 for i in starts if rq[i] >= limit_us / 2)
        note += f"; {queued} of the runs began with the woken follower waiting ≥ 0.5 ms for a CPU"
    return note


def peer_rows(R: Results, short: bool = False) -> tuple[list[str], list[list[str]]]:
    peers = R.peers()
    head = ["figure", R.plabel] + (["pure Python"] if R.has_pure else []) + [LABELS[p] for p in peers]
    rows = []
    for w, desc in R.workloads():
        if not any(R.get(p, w) for p in peers):
            continue
        p = R.get("plasmite", w)
        unit = next((r.unit for r in R.all if r.workload == w), "")
        pv = p.value if p else None
        cells = [SHORT.get(w, desc) if short else desc, fmt(pv, unit)]
        qv = None
        if R.has_pure:
            q = R.get("plasmite-pure", w)
            qv = q.value if q else None
            cells.append(fmt(qv, unit) if q else "–")
        for peer in peers:
            r = R.get(peer, w)
            if r is None or r.value is None:
                cells.append("n/a")
            else:
                both = ratio(pv, r.value) + (f" / {ratio(qv, r.value)}" if qv is not None else "")
                cell = f"{fmt(r.value, unit)} ({both})"
                if r.ok is False:
                    cell += " CHECK FAILED"
                cells.append(cell)
        rows.append(cells)
    return head, rows


def peers_ahead(R: Results) -> list[str]:
    """One line per (row, peer) where the peer's figure beats compiled
    Plasmite's: the issue's bar is "ahead of every peer on every row"."""
    out = []
    for w, desc in R.workloads():
        p = R.get("plasmite", w)
        if p is None or p.value is None:
            continue
        for peer in R.peers():
            r = R.get(peer, w)
            if r is None or r.value is None or r.ok is False:
                continue
            if (r.value > p.value) if p.higher_is_better else (r.value < p.value):
                out.append(f"- **{desc}**: {LABELS[peer]} {fmt(r.value, p.unit)} against Plasmite "
                           f"{fmt(p.value, p.unit)} {p.unit} ({ratio(p.value, r.value)})")
    return out


def text_table(head: list[str], rows: list[list[str]], max_note: int = 60) -> str:
    rows = [[c if len(c) <= max_note else c[: max_note - 1] + "…" for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return "\n".join(out)


def md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        out.append("| " + " | ".join(esc(c) for c in row) + " |")
    return "\n".join(out)


def print_tables(R: Results) -> str:
    txt = "Plasmite against the raw floor and DESIGN.md targets\n"
    txt += text_table(main_head(R), main_rows(R)) + "\n\n"
    head, rows = peer_rows(R, short=True)
    if rows:
        pair = " compiled / pure" if R.has_pure else ""
        txt += (f"Peers: figure (Plasmite/peer{pair}; ↑ rows: >1 means Plasmite is faster, "
                "↓ rows: <1 means Plasmite is faster)\n")
        txt += text_table(head, rows, 30) + "\n"
    return txt


# -- machine -----------------------------------------------------------------------------

def _ver(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    from bench.peers.redis_streams import server_version

    return {
        "load average": loadavg(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            "plasmite-core": _ver("plasmite-core"),
            "plasmite-cli": _ver("plasmite-cli"),
            "plasmite-serve": _ver("plasmite-serve"),
            "msgspec": _ver("msgspec"),
            "sqlite (library)": sqlite3.sqlite_version,
            "persist-queue": _ver("persist-queue"),
            "diskcache": _ver("diskcache"),
            "litequeue": _ver("litequeue"),
            "redis-py": _ver("redis"),
            "redis-server": server_version(),
        },
    }


# -- plots -------------------------------------------------------------------------------------

THROUGHPUT = [("append", "append 1/call"), ("append_many", "append batch"), ("read", "read decoded"),
              ("get", "get by key"), ("two_writers", "2 writers")]


def _plot_label(R: Results, system: str) -> str:
    return R.plabel if system == "plasmite" else LABELS[system]


def plot(R: Results, out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    order = ["floor", "plasmite", "plasmite-pure", *PEERS]
    systems = [s for s in order if any(r.system == s for r in R.all)]
    colors = {s: c for s, c in zip(order, ["#9e9e9e", "#d62728", "#f4a3a3", "#1f77b4", "#ff7f0e", "#2ca02c",
                                           "#9467bd", "#8c564b", "#e377c2", "#17becf"])}
    wl = [(w, lbl) for w, lbl in THROUGHPUT if any(r.workload == w and r.value for r in R.all)]
    if wl:
        fig, ax = plt.subplots(figsize=(10, 1.1 + 1.3 * len(wl)))
        h = 0.8 / max(1, len(systems))
        for i, s in enumerate(systems):
            ys, xs = [], []
            for j, (w, _lbl) in enumerate(wl):
                v = R.value(s, w)
                if v:
                    ys.append(j + (i - (len(systems) - 1) / 2) * h)
                    xs.append(v)
            ax.barh(ys, xs, height=h, color=colors[s], label=_plot_label(R, s))
            for y, x in zip(ys, xs):
                ax.text(x * 1.05, y, fmt(x, "msg/s"), va="center", fontsize=6)
        ax.set_yticks(range(len(wl)), [lbl for _w, lbl in wl])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("messages (or gets) per second, log scale — higher is better")
        ax.set_title("Throughput per system (same run, same machine)")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out_dir, "throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)

    lat = [(s, R.get(s, "latency_p50")) for s in systems]
    lat = [(s, r) for s, r in lat if r is not None and r.extra.get("samples")]
    if lat:
        fig, ax = plt.subplots(figsize=(10, 5))
        for s, r in lat:
            xs = sorted(r.extra["samples"])
            ys = [(k + 1) / len(xs) for k in range(len(xs))]
            ax.plot(xs, ys, color=colors[s], label=f"{_plot_label(R, s)} (p50 {fmt(r.value, 'µs')} µs)", lw=1.6)
        ax.axvline(150, color="k", ls=":", lw=1)
        ax.axvline(1000, color="k", ls="--", lw=1)
        ax.text(150, 0.02, " p50 target", fontsize=7)
        ax.text(1000, 0.02, " p99 target", fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("writer → follower hand-off across processes, µs (log) — lower is better")
        ax.set_ylabel("fraction of messages")
        ax.set_title("Hand-off latency distribution (CDF)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


# -- markdown ---------------------------------------------------------------------------------------

def markdown(R: Results, settings, meta: dict, elapsed_s: float, plots: list[str], skipped: list[str],
             analysis: str, md_dir: str, command: str, json_path: str | None = None) -> str:
    m = meta["machine"]
    L = ["# Benchmarks", ""]
    L.append(f"Generated by `{command}` on {meta['date']} in {elapsed_s / 60:.1f} minutes. "
             "Every figure below comes from that one run on one machine: Plasmite through its public "
             "API, the raw floor (msgspec frames copied into an mmap under `fcntl.flock`, nothing else) "
             "and the alternatives a user would pick instead. Re-run it with `tox -e bench` or "
             "`python -m bench` (`--quick` for a smoke run, `--only core|peers|cli|http`).")
    L.append("")
    L += ["## Headline", ""]
    L += headline(R)
    L += ["", "## Plasmite against the floor and DESIGN.md's targets", ""]
    L.append("↑ higher is better, ↓ lower is better. `Plasmite/floor` is the fraction of what plain Python "
             "allows on this box; a relative target is computed from the floor measured in this run. "
             "`same, per CPU-s` is that ratio from messages per CPU-second of the benchmark process instead "
             "of per wall-clock second: other load on the machine disturbs it much less, so when the two "
             "disagree the machine was busy (see the load average below). The status uses wall time.")
    if R.has_pure:
        L.append("")
        L.append(f"Two columns for Plasmite: `{R.plabel}` is the default install, with plasmite-speedups' C "
                 f"extension in use ({', '.join(R.compiled or [])}); `pure Python` is the same workload run again "
                 "in a child process with `PLASMITE_PURE=1` (no compiled code), right after the compiled one. "
                 "The status judges the compiled path; `pure/floor` is the pure path's own ratio.")
    ref = [("append", 280_000, "msg/s", "per call"), ("append_many", 460_000, "msg/s", "batched"),
           ("read", 570_000, "msg/s", "decoded read"), ("latency_p50", 70, "µs", "hand-off p50")]
    sfx = {"µs": " µs", "msg/s": " msg/s"}
    parts = [f"{lbl} {fmt(R.value('floor', w), u)}{sfx[u]} (DESIGN {fmt(d, u)}{sfx[u]})" for w, d, u, lbl in ref
             if R.value("floor", w) is not None]
    if parts:
        L.append("")
        L.append("The floor on this machine in this run against DESIGN.md's reference box: " + ", ".join(parts) + ".")
    L.append("")
    L.append(md_table(main_head(R), main_rows(R)))
    head, rows = peer_rows(R)
    if rows:
        L += ["", "## Against the alternatives", ""]
        pair = ("; with two Plasmite columns, compiled Plasmite / peer, then pure Python / peer"
                if R.has_pure else "")
        L.append(f"Each cell: the peer's figure (Plasmite / peer{pair}). On ↑ rows a ratio above 1 means Plasmite is "
                 "faster; on latency rows (µs) a ratio below 1 means Plasmite is faster; for messages per MiB "
                 "above 1 means Plasmite keeps more. \"n/a\": the system has no such operation (see notes).")
        L.append("")
        L.append(md_table(head, rows))
        notes = []
        for peer in R.peers():
            n = getattr(load(peer), "NOTES", {})
            if n:
                notes.append(f"- {LABELS[peer]}: " + "; ".join(f"{k}: {v}" for k, v in n.items()))
        if notes:
            L += ["", "Notes on the peers' rows:", ""] + notes
    missed = [(w, d) for w, d in R.workloads()
              if verdict(w, R.value("plasmite", w), R.value("floor", w)) in ("MISSED", "not measured")]
    L += ["", "## Targets missed", ""]
    if missed:
        for w, d in missed:
            p = R.get("plasmite", w)
            v = verdict(w, R.value("plasmite", w), R.value("floor", w))
            thr = threshold(w, R.value("floor", w))
            unit = p.unit if p else ""
            tgt = TARGETS[w].text + (f" = {fmt(thr, unit)}" if TARGETS[w].floor and thr else "")
            L.append(f"- **{d}**: {v} — {fmt(p.value if p else None, unit)} {unit} against {tgt}"
                     + (f" ({p.note})" if p and p.note else ""))
    else:
        L.append("None: every measured figure meets its target.")
    if R.peers():
        ahead = peers_ahead(R)
        L += ["", "## Where a peer is ahead", ""]
        L += ahead or ["None: compiled Plasmite leads every row it shares with a peer."]
    if analysis.strip():
        L += ["", analysis.strip()]
    if plots:
        L += ["", "## Plots", ""]
        for path in plots:
            rel = os.path.relpath(path, md_dir)
            L.append(f"![{os.path.basename(path)}]({rel})")
            L.append("")
    L += ["", "## How each system is driven", ""]
    L.append("- **floor**: `bench/floor.py`; frame = u32 length, u64 seq, u64 time + msgspec JSON; "
             "header word bumped under the lock; its follower spins on that word (it may burn a core, "
             "Plasmite's may not).")
    L.append("- **Plasmite**: `from plasmite import Client, Durability`; `append(dict, durability=FAST)`, "
             "`append_many`, `open_stream(...).next()` with `.data`, `get(seq).data`; the follower blocks in "
             "`open_stream(last=0).next(timeout_ms=...)`."
             + (" The pure-Python column runs the same workloads in a child process started with "
                "`PLASMITE_PURE=1` (`bench/pure.py`); its follower and writer processes inherit it." if R.has_pure
                else ""))
    for p in R.peers():
        mod = load(p)
        doc = (mod.__doc__ or "").strip().replace("\n", " ")
        L.append(f"- **{LABELS[p]}**: {doc}")
    L.append("- Polling followers sleep 100 µs between polls (no wake-up mechanism exists for them); "
             "Plasmite and Redis block.")
    L.append("- Every timed loop is bounded by a count and a time budget; throughput figures are the median of "
             "the repeats; hand-off latency is taken from `time.monotonic_ns()` before the append call to "
             "receipt in the follower process, with a pause between messages, first samples dropped as warm-up.")
    if skipped:
        L += ["", "## Skipped", ""]
        L += [f"- {s}" for s in skipped]
    L += ["", "## Running it", ""]
    L.append("- `tox -e bench`: the full run (about 7-8 minutes on 2 cores, bounded well under 15); it rewrites "
             "this page, `docs/benchmarks/*.png`, `results.json` and the profiles.")
    L.append("- `python -m bench --quick`: a smoke run of every row in about a minute; prints the tables and "
             "writes nothing unless `--out DIR` is given.")
    L.append("- `--only core,peers,cli,http` picks row groups, `--peers sqlite,redis,...` picks peers, "
             "`--no-profile` skips the profiles, `--no-pure` the pure-Python column, "
             "`--render docs/benchmarks/results.json` re-renders this page without measuring.")
    L.append("- Peers: `pip install persist-queue diskcache litequeue redis` (the tox env installs them) and Debian's "
             "`redis-server` on PATH (`apt-get install redis-server`); the benchmark starts it on a free loopback "
             "port and stops it by its pid. Anything missing is skipped with a note, as are the CLI and HTTP rows "
             "when plasmite-cli or plasmite-serve is not installed.")
    L += ["", "## Machine, versions, settings", ""]
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM; {m['os']}; Python {m['python']}")
    L.append(f"- load average (1/5/15 min) at start {meta.get('load_start', '?')}, at end {m['load average']}: "
             "a load near or above the core count means other work shared the CPUs and figures are depressed "
             "and noisier (the floor, measured in the same run, suffers alike)")
    L.append("- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    if R.compiled is not None:
        L.append("- compiled in the Plasmite column: " + (", ".join(R.compiled) if R.compiled else
                                                          "nothing (the pure-Python path)"))
    L.append("- settings: " + ", ".join(f"{k}={v}" for k, v in asdict(settings).items()))
    from bench.util import payload_bytes

    pb = payload_bytes()
    L.append(f"- message: `{pb.decode()}` ({len(pb)} bytes of JSON); hand-off and two-writer messages carry the "
             "same fields (with the send time or the writer id)")
    rel = os.path.relpath(json_path, md_dir) if json_path else "benchmarks/results.json"
    L.append(f"- raw numbers, every run and the latency samples: [`{rel}`]({rel})")
    L.append("")
    return "\n".join(L)


def headline(R: Results) -> list[str]:
    out = []

    def best_peer(w: str, higher: bool = True):
        # Plasmite on Redis is Plasmite's own transport, not an alternative
        cands = [(R.value(p, w), p) for p in R.peers() if p != "plasmite-redis" and R.value(p, w)]
        if not cands:
            return None
        return (max if higher else min)(cands)

    def pure(w: str, unit: str, fv: float | None = None) -> str:
        qv = R.value("plasmite-pure", w)
        if not R.has_pure or qv is None:
            return ""
        return f"; pure Python {fmt(qv, unit)}" + (f" ({ratio(qv, fv)})" if fv else "")

    compiled = " (compiled)" if R.has_pure else ""
    for w, lbl, unit in [("append", "append, one per call", "msg/s"), ("append_many", "append in batches", "msg/s"),
                         ("read", "read back decoded, one next() per message", "msg/s"),
                         ("read_batch", "read back decoded, in batches", "msg/s"),
                         ("read_raw_batch", "raw JSON envelopes in batches", "msg/s"), ("get", "get by seq", "get/s"),
                         ("two_writers", "two writer processes", "msg/s")]:
        pv = R.value("plasmite", w)
        if pv is None:
            continue
        s = f"- {lbl}: **{fmt(pv, unit)} {unit}**{compiled}"
        fv = R.value("floor", w)
        if fv:
            s += f" = {ratio(pv, fv)} the floor ({fmt(fv, unit)})"
        s += pure(w, unit, fv)
        bp = best_peer(w)
        if bp:
            s += f"; best peer {LABELS[bp[1]]} {fmt(bp[0], unit)} ({ratio(pv, bp[0])})"
        out.append(s)
    p50, p99 = R.value("plasmite", "latency_p50"), R.value("plasmite", "latency_p99")
    if p50 is not None:
        s = f"- hand-off to a follower process: **p50 {fmt(p50, 'µs')} µs, p99 {fmt(p99, 'µs')} µs**{compiled}"
        q50, q99 = R.value("plasmite-pure", "latency_p50"), R.value("plasmite-pure", "latency_p99")
        if R.has_pure and q50 is not None:
            s += f"; pure Python p50 {fmt(q50, 'µs')} µs, p99 {fmt(q99, 'µs')} µs"
        bp = best_peer("latency_p50", higher=False)
        if bp:
            s += f"; best peer {LABELS[bp[1]]} p50 {fmt(bp[0], 'µs')} µs"
            bq = R.value(bp[1], "latency_p99")
            if bq is not None:
                s += f", p99 {fmt(bq, 'µs')} µs"
        out.append(s)
    rv = R.value("plasmite", "retained_per_mib")
    if rv:
        out.append(f"- messages kept per MiB of pool file: **{fmt(rv, 'msg/MiB')}**")
    for w, lbl in [("cli_feed", "`pls feed` from stdin"), ("http_append", "HTTP append"), ("remote_tail", "remote tail")]:
        r = R.get("plasmite", w)
        if r and r.value:
            out.append(f"- {lbl}: **{fmt(r.value, r.unit)} {r.unit}**{compiled}{pure(w, r.unit)}")
    r, b = R.get("plasmite", "cli_oneshot"), R.get("floor", "cli_oneshot")
    if r and r.value and b and b.value:
        out.append(f"- one-shot `pls feed`: **{r.value:.0f} ms** = {ratio(r.value, b.value)} a plain venv's bare `python -c pass` ({b.value:.0f} ms)")
    return out


def write_json(R: Results, meta: dict, settings, path: str) -> None:
    data = {"meta": meta, "settings": asdict(settings), "results": [r.to_dict() for r in R.all]}
    from bench.util import scrub

    with open(path, "w") as f:
        f.write(scrub(json.dumps(data, indent=1, default=str)))
