"""Crash campaign: writers SIGKILLed at every step of the append path and at random.

The core has a test-only fault point at each step of an append
(``PLASMITE_FAULT=<step>[:<n>]``, see plasmite_core/pool.py). A forked writer
arms it and appends until it kills itself; the parent then checks that the pool
opens, doctor finds it clean, every reader sees only whole checksummed messages
in seq order, and every append that returned before the kill (durability flush
or fast: a SIGKILL does not lose the page cache) is still there unless the ring
overwrote it. Forking keeps one kill at a few milliseconds, so CI can afford
dozens and the soak thousands; a few kills go through the real environment
variable in a fresh interpreter and through ``pls feed``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plasmite import Client, Durability
from plasmite_core import pool as core_pool
from plasmite_core.doctor import check_pool

from reliability_common import ISSUES_SEEN, Budget, is_whole, payload, seconds, size, verify_pool

STEPS = core_pool.FAULT_STEPS

# Kill statistics, shown after the run (docs/reliability.md quotes them).
STATS = {"fault_kills": 0, "random_kills": 0, "not_fired": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_kill_counts(figures):
    yield
    figures["reliability crash campaign"] = f"{STATS}; doctor issues repaired: {dict(ISSUES_SEEN)}"


def _writer(path: str, mode: str, seed: int, fault: str | None, count: int, ack_w: int) -> None:
    """Body of a forked writer: append ``count`` messages, acking each seq on a pipe."""
    try:
        if fault:
            core_pool._fault_spec = fault
            core_pool._faults = True
            core_pool._fault_count = 0
        rnd = random.Random(seed)
        with Client(Path(path).parent) as c, c.open_pool(path) as pool:
            i = 0
            while i < count:
                dur = Durability.FLUSH if rnd.random() < 0.3 else Durability.FAST
                if mode == "batch" or (mode == "mixed" and rnd.random() < 0.3):
                    k = rnd.randint(1, 12)
                    vals = [payload(f"{seed}.{i + j}", rnd.choice((0, 10, 60, 300, 1500))) for j in range(k)]
                    ms = pool.append_many(vals, durability=dur)
                    os.write(ack_w, b"".join(b"%d\n" % m.seq for m in ms))
                    i += k
                else:
                    m = pool.append(payload(f"{seed}.{i}", rnd.choice((0, 10, 60, 300, 1500, 3000))),
                                    [f"w{seed % 7}"], durability=dur)
                    os.write(ack_w, b"%d\n" % m.seq)
                    i += 1
    except BaseException:  # noqa: BLE001 - report through the exit status
        import traceback

        traceback.print_exc()
        os._exit(3)
    os._exit(0)


def _fork_writer(path: Path, mode: str, seed: int, fault: str | None, count: int) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _writer(str(path), mode, seed, fault, count, w)
        os._exit(4)  # not reached
    os.close(w)
    return pid, r


def _drain(fd: int) -> set[int]:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return {int(x) for x in b"".join(chunks).split()}


def _wait(pid: int, timeout: float = 60.0) -> int:
    """Exit status as waitpid encodes it; kills the child if it outlives ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"writer {pid} hung")
        time.sleep(0.002)


def _new_pool(tmp_path: Path, name: str, **kw) -> Path:
    with Client(tmp_path) as c:
        c.create_pool(name, 64 * 1024, **kw).close()
    return tmp_path / f"{name}.plasmite"


def _kill_at(path: Path, step: str, mode: str, nth: int, seed: int, acked: set[int]) -> bool:
    """One writer armed to die at the ``nth`` time it reaches ``step``; True if it did."""
    pid, r = _fork_writer(path, mode, seed, f"{step}:{nth}", 600)
    acks = _drain(r)
    status = _wait(pid)
    acked |= acks
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"writer failed (status {status})"
    return False


@pytest.mark.parametrize("mode", ["single", "batch"])
@pytest.mark.parametrize("index", ["full", "small"])
def test_kill_at_every_append_step(tmp_path, mode, index):
    """Dozens of kills (CI) / thousands (soak) at each fault point, then full verification."""
    per_step = size(5, 400)
    budget = Budget(seconds(12, 240))
    kw = {} if index == "full" else {"index_capacity": 64}
    path = _new_pool(tmp_path, f"crash-{mode}-{index}", **kw)
    rnd = random.Random(f"{mode}{index}")
    acked: set[int] = set()
    fired = {s: 0 for s in STEPS}
    rounds = 0
    while budget and rounds < per_step:
        for step in STEPS:
            # pads happen once per lap: a low n lands on the first wraps
            nth = rnd.randint(1, 2) if step == "pad_written" else rnd.randint(1, 40)
            if _kill_at(path, step, mode, nth, rnd.randrange(1 << 30), acked):
                fired[step] += 1
                STATS["fault_kills"] += 1
            else:
                STATS["not_fired"] += 1
            # A torn publish leaves the slot it was writing failing its CRC:
            # readers use the other slot; doctor names it, repair rewrites it.
            # With an index smaller than the retained count, a death after the
            # index write leaves the slot of a retained seq pointing at the
            # unpublished frame: get() falls back to a scan, doctor names it.
            # (Batches write index slots frame by frame, so from frame_written on.)
            allowed = ("state_slot",) if step == "state_published" else ()
            if index == "small" and step in ("frame_written", "index_written", "state_published"):
                allowed += ("index",)
            verify_pool(path, acked, allowed=allowed)
        rounds += 1
    assert rounds >= 1
    assert all(fired.values()), fired  # every step really was hit
    # The pool stays writable after all those deaths: seqs continue.
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        newest = pool.bounds()[1]
        m = pool.append(payload("after", 5), durability=Durability.FLUSH)
        assert m.seq == newest + 1 and pool.get(m.seq).data == payload("after", 5)
    verify_pool(path)


@pytest.mark.parametrize("step", STEPS)
def test_fault_env_var_in_fresh_interpreter(tmp_path, step):
    """The real switch: PLASMITE_FAULT in the environment of a new Python process."""
    path = _new_pool(tmp_path, "env")
    script = (
        "import sys\n"
        "from plasmite import Client, Durability\n"
        "from pathlib import Path\n"
        "p = sys.argv[1]\n"
        "pool = Client(Path(p).parent).open_pool(p)\n"
        "for i in range(400):\n"
        "    body = 'x' * (i * 37 % 2500)\n"
        "    m = pool.append({'k': str(i), 'b': body}, durability=Durability.FLUSH)\n"
        "    print(m.seq, flush=True)\n"
    )
    nth = "1" if step == "pad_written" else "30"
    proc = subprocess.run([sys.executable, "-c", script, str(path)], env={**os.environ, "PLASMITE_FAULT": f"{step}:{nth}"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acked = {int(x) for x in proc.stdout.split()}
    assert acked
    report = check_pool(path)
    assert report.ok or (step == "state_published" and [i.code for i in report.issues] == ["state_slot"]), report
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        oldest, newest = pool.bounds()
        assert newest == max(acked)  # the killed append never became visible
        for s in acked:
            if s >= oldest:
                assert pool.get(s).data["k"] == str(s - 1)
    STATS["fault_kills"] += 1


def test_cli_feed_killed_mid_append(tmp_path):
    """`pls feed` from stdin dies torn mid-write; the receipts it printed survive."""
    path = _new_pool(tmp_path, "feed")
    lines = "".join(f'{{"k":"{i}","b":"{"y" * (i % 900)}"}}\n' for i in range(3000))
    proc = subprocess.run([sys.executable, "-m", "plasmite_cli", "--dir", str(tmp_path), "feed", "feed"],
                          input=lines, env={**os.environ, "PLASMITE_FAULT": "frame_written:3"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-500:])
    receipts = [json.loads(x)["seq"] for x in proc.stdout.splitlines() if x.strip()]
    assert check_pool(path).ok
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        oldest, newest = pool.bounds()
        assert newest < 3000  # the torn write never became visible
        assert not receipts or max(receipts) <= newest
        seen = [m.seq for m in pool.tail(since_seq=oldest, timeout_ms=0) if m.data["k"] == str(m.seq - 1)]
        assert seen == list(range(oldest, newest + 1))
    STATS["fault_kills"] += 1


def _follower(path: str, out_w: int, stop_after: float) -> None:
    """Forked follower: validates everything it sees; exit 0 only if all was whole and ordered."""
    try:
        gaps = []
        n = 0
        last = 0
        with Client(Path(path).parent) as c, c.open_pool(path) as pool:
            stream = pool.open_stream(timeout_ms=int(stop_after * 1000), on_gap=lambda a, b: gaps.append((a, b)))
            for m in stream.messages():
                if m.data.get("k") == "final":
                    last = m.seq
                    break
                if m.seq <= last or not is_whole(m.data):
                    os.write(out_w, f"BAD {m.seq} after {last}\n".encode())
                    os._exit(5)
                last = m.seq
                n += 1
        os.write(out_w, f"OK {n} {len(gaps)} {last}\n".encode())
        os._exit(0)
    except BaseException:  # noqa: BLE001
        import traceback

        os.write(out_w, ("EXC " + traceback.format_exc().replace("\n", " | ") + "\n").encode())
        os._exit(6)


def test_random_kills_with_live_follower(tmp_path):
    """Four writers (single, batch, mixed) killed at random times, round after round,
    while a follower reads through every crash."""
    rounds = size(8, 400)
    budget = Budget(seconds(15, 300))
    path = _new_pool(tmp_path, "random")
    rnd = random.Random(99)
    fr, fw = os.pipe()
    fpid = os.fork()
    if fpid == 0:
        os.close(fr)
        _follower(str(path), fw, budget.left + 20)
    os.close(fw)
    acked: set[int] = set()
    done = 0
    while budget and done < rounds:
        writers = [_fork_writer(path, m, rnd.randrange(1 << 30), None, 10**9) for m in ("single", "batch", "mixed", "mixed")]
        time.sleep(rnd.uniform(0.02, 0.12))
        for pid, _ in writers:
            time.sleep(rnd.uniform(0, 0.004))
            os.kill(pid, signal.SIGKILL)
        for pid, r in writers:
            acked |= _drain(r)
            status = _wait(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            STATS["random_kills"] += 1
        verify_pool(path, acked, allowed=("state_slot",))
        done += 1
    # the follower stops at this marker (or at its deadline)
    with Client(tmp_path) as c, c.open_pool(str(path)) as pool:
        final = pool.append(payload("final", 1)).seq
    out = b""
    status = _wait(fpid, timeout=budget.left + 60)
    while chunk := os.read(fr, 4096):
        out += chunk
    os.close(fr)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    words = out.split()
    assert words[0] == b"OK" and int(words[3]) == final, out
    assert done >= 1


def test_pls_doctor_after_kills(tmp_path):
    """`pls doctor` on crashed pools: clean after a torn frame (exit 0); names a
    torn state slot (exit 7, JSON issue with its offset); `pls doctor --repair`
    (or repair_pool where the CLI lacks it) fixes it without losing a message."""
    from plasmite_core.doctor import repair_pool

    def doctor(path, *extra):
        proc = subprocess.run([sys.executable, "-m", "plasmite_cli", "doctor", str(path), "--json", *extra],
                              capture_output=True, text=True, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None

    torn_frame = _new_pool(tmp_path, "torn-frame")
    assert _kill_at(torn_frame, "frame_written", "single", 5, 1, set())
    rc, out = doctor(torn_frame)
    assert rc == 0, out
    torn_state = _new_pool(tmp_path, "torn-state")
    assert _kill_at(torn_state, "state_published", "batch", 3, 2, set())
    rc, out = doctor(torn_state)
    assert rc == 7, out
    text = json.dumps(out)
    assert "state_slot" in text and '"offset"' in text, out
    before = verify_pool(torn_state, doctor=False)
    rc, out = doctor(torn_state, "--repair")
    if rc == 2 and out is None:  # an older CLI without --repair
        assert repair_pool(torn_state).repaired
    else:
        assert rc == 0 and "repaired" in json.dumps(out), (rc, out)
    assert verify_pool(torn_state) == before
    rc, out = doctor(torn_state)
    assert rc == 0, out
    verify_pool(torn_state)
