"""Pool lifecycle under real processes: bounded lock waits, delete under a live
writer, temp files of killed creators, the one pool-name rule, and SIGINT.

Each test is a regression test for an item of the hardening issue (see
docs/reliability.md, "Bugs the campaign found"): on the code before the fix it
hangs (bounded here by subprocess timeouts), acknowledges appends to a deleted
pool, leaves temp files, or answers with the wrong error kind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from plasmite import Client
from plasmite_core.errors import BusyError, NotFoundError, UsageError

PY = sys.executable
PLS = [PY, "-m", "plasmite_cli"]

HOLDER = textwrap.dedent(
    """
    import fcntl, os, signal, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)   # stopped while holding the write lock (Ctrl-Z)
    fcntl.flock(fd, fcntl.LOCK_UN)
    """
)


def pls(pool_dir: Path, *args: str, env: dict | None = None, timeout: float = 60, **kw):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*PLS, "--dir", str(pool_dir), *args], capture_output=True, env=full_env,
                          timeout=timeout, **kw)


class StoppedHolder:
    """A separate process that takes a pool's write lock and stops itself."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([PY, "-c", HOLDER, str(path)], stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == b"locked\n"
        deadline = time.monotonic() + 20
        while _proc_state(self.proc.pid) != "T":
            assert time.monotonic() < deadline, "holder did not stop"
            time.sleep(0.01)
        self.pid = self.proc.pid

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        assert self.proc.wait(timeout=20) == 0

    def __enter__(self) -> "StoppedHolder":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            os.kill(self.pid, signal.SIGCONT)
            self.proc.wait(timeout=20)


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    return stat[stat.rfind(")") + 2]


def _error(stderr: bytes) -> dict:
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]["error"]


# ----------------------------------------------------------- item 2: lock waits
@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc (Linux)")
def test_feed_against_a_stopped_lock_holder_is_busy_within_the_bound(pool_dir):
    """Before: `pls feed` (and `--retry`) blocked forever on the flock of a
    stopped writer. Now: Busy (exit 5) after PLASMITE_LOCK_TIMEOUT, with a hint
    naming the holder's PID; after SIGCONT everything works."""
    assert pls(pool_dir, "pool", "create", "live").returncode == 0
    path = pool_dir / "live.plasmite"
    env = {"PLASMITE_LOCK_TIMEOUT": "1"}
    with StoppedHolder(path) as holder:
        t0 = time.monotonic()
        r = pls(pool_dir, "feed", "live", '{"a":1}', env=env, timeout=30)
        elapsed = time.monotonic() - t0
        assert r.returncode == 5, r.stderr
        assert r.stdout == b""
        err = _error(r.stderr)
        assert err["kind"] == "Busy"
        assert f"process {holder.pid}" in err["message"] and "stopped" in err["message"]
        assert str(holder.pid) in err["hint"]
        assert 0.9 <= elapsed < 15

        # --retry applies to Busy: every attempt is bounded, then exit 5
        r = pls(pool_dir, "feed", "live", "--retry", "2", "--retry-delay", "10ms", env={"PLASMITE_LOCK_TIMEOUT": "300ms"},
                input=b'{"b":1}\n{"b":2}\n', timeout=30)
        assert r.returncode == 5, r.stderr
        assert "gave up after 2 retries" in _error(r.stderr)["hint"]

        # delete waits for the write lock too, and refuses with Busy: the pool stays
        r = pls(pool_dir, "pool", "delete", "live", env={"PLASMITE_LOCK_TIMEOUT": "300ms"}, timeout=30)
        assert r.returncode == 5 and path.exists()
        holder.resume()
    r = pls(pool_dir, "feed", "live", '{"a":2}', env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["seq"] == 1


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc (Linux)")
def test_api_lock_wait_is_bounded_for_every_thread(pool_dir):
    """Python API: append, append_many and a second thread queued behind the
    first on the same handle each end in BusyError within the bound."""
    with Client(pool_dir, lock_timeout=0.5) as client, client.create_pool("p") as pool:
        assert pool.lock_timeout == 0.5
        with StoppedHolder(pool.path) as holder:
            t0 = time.monotonic()
            with pytest.raises(BusyError) as info:
                pool.append({"x": 1})
            assert str(holder.pid) in info.value.hint
            assert time.monotonic() - t0 < 5
            with pytest.raises(BusyError):
                pool.append_many([{"x": 1}, {"x": 2}])

            results: list = []

            def writer() -> None:
                t = time.monotonic()
                try:
                    pool.append({"t": 1})
                except BusyError:
                    results.append(time.monotonic() - t)

            threads = [threading.Thread(target=writer) for _ in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert len(results) == 4
            assert max(results) < 3  # each within its own bound, not 4 x 0.5 s queued (plus slack)
            pool.lock_timeout = 0
            with pytest.raises(BusyError):
                pool.append({"x": 1})
            holder.resume()
        assert pool.append({"x": 2}).seq == 1


def test_lock_timeout_values(pool_dir, monkeypatch):
    monkeypatch.setenv("PLASMITE_LOCK_TIMEOUT", "250ms")
    assert Client(pool_dir).lock_timeout == 0.25
    assert Client(pool_dir, lock_timeout="2s").lock_timeout == 2.0
    assert Client(pool_dir, lock_timeout=1e300).lock_timeout == threading.TIMEOUT_MAX
    for bad in (-1, "soon", float("nan"), True):
        with pytest.raises(UsageError):
            Client(pool_dir, lock_timeout=bad)
    monkeypatch.setenv("PLASMITE_LOCK_TIMEOUT", "x")
    r = pls(pool_dir, "feed", "--create", "p", "{}")
    assert r.returncode == 2 and "PLASMITE_LOCK_TIMEOUT" in _error(r.stderr)["message"]


# ------------------------------------------------- item 4: delete under a writer
def _feed_process(pool_dir: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([*PLS, "--dir", str(pool_dir), "feed", name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("recreate", [False, True])
def test_feed_never_acknowledges_after_its_pool_was_deleted(pool_dir, recreate):
    """Before: `pls feed live` reading a pipe kept printing receipts after
    `pls pool delete live` (and a re-create): those messages went to an
    unlinked file. Now the feed stops with NotFound and prints no receipt."""
    assert pls(pool_dir, "pool", "create", "live").returncode == 0
    feed = _feed_process(pool_dir, "live")
    try:
        for i in range(3):
            feed.stdin.write(b'{"before":%d}\n' % i)
            feed.stdin.flush()
            assert json.loads(feed.stdout.readline())["seq"] == i + 1
        r = pls(pool_dir, "pool", "delete", "live")
        assert r.returncode == 0, r.stderr
        if recreate:
            assert pls(pool_dir, "pool", "create", "live").returncode == 0
        feed.stdin.write(b'{"after":1}\n{"after":2}\n')
        feed.stdin.close()
        feed.wait(timeout=60)
        out, err = feed.stdout.read(), feed.stderr.read()
    finally:
        if feed.poll() is None:
            feed.kill()
            feed.wait()
    assert out == b"", out  # no receipt after the delete succeeded
    assert feed.returncode == 3
    error = _error(err)
    assert error["kind"] == "NotFound" and "deleted" in error["message"]
    if recreate:
        info = json.loads(pls(pool_dir, "pool", "info", "live", "--json").stdout)
        assert info["metrics"]["message_count"] == 0


def test_api_writer_refuses_a_deleted_or_replaced_pool(pool_dir):
    with Client(pool_dir) as c1, Client(pool_dir) as c2:
        pool = c1.create_pool("p")
        batch = c1.open_pool("p")
        assert pool.append({"n": 1}).seq == 1
        batch.append_many([{"n": 2}])  # both handles have a cached state now
        c2.delete_pool("p")
        with pytest.raises(NotFoundError, match="deleted"):
            pool.append({"n": 3})
        with pytest.raises(NotFoundError, match="deleted"):
            batch.append_many([{"n": 3}, {"n": 4}])
        fresh = c2.create_pool("p")
        with pytest.raises(NotFoundError):
            pool.append({"n": 5})
        assert fresh.bounds() == (None, None)
        assert fresh.append({"n": 1}).seq == 1
        with pytest.raises(NotFoundError):
            c2.delete_pool("missing")
        for h in (pool, batch, fresh):
            h.close()


# -------------------------------------------------- item 5: killed creators
def _kill_during_create(pool_dir: Path, attempts: int = 30) -> list[Path]:
    """SIGKILL `pls pool create pN --size 256M` once its temp file has its size
    (while it allocates)."""
    for n in range(attempts):
        name = f"p{n}"
        proc = subprocess.Popen([*PLS, "--dir", str(pool_dir), "pool", "create", name, "--size", "256M"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        prefix = f".{name}.plasmite."
        try:
            while proc.poll() is None:
                if any(e.startswith(prefix) and _size(pool_dir / e) for e in os.listdir(pool_dir)):
                    proc.kill()
                    break
        finally:
            proc.wait()
        left = [pool_dir / e for e in os.listdir(pool_dir) if e.startswith(prefix) and e.endswith(".tmp")]
        if left:
            return left
        (pool_dir / f"{name}.plasmite").unlink(missing_ok=True)  # finished before the kill: free the space
    pytest.skip("could not kill a creator while it allocated")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_temp_files_of_killed_creators_are_reported_and_removed(pool_dir):
    """Before: a SIGKILLed `pool create` left a full-size hidden temp file that
    nothing listed or removed. Now doctor --all reports it and the next list
    (or create) in the directory removes it."""
    left = _kill_during_create(pool_dir)
    tmp = left[0]
    r = pls(pool_dir, "doctor", "--all", "--json")
    assert r.returncode == 0, r.stderr
    reported = json.loads(r.stdout)["leftovers"]
    assert [d["path"] for d in reported] == [str(tmp)]
    assert reported[0]["creator_alive"] is False and reported[0]["size"] > 0
    text = pls(pool_dir, "doctor", "--all").stdout.decode()
    assert tmp.name in text and "dead" in text
    assert tmp.exists()  # doctor without --repair changes nothing

    r = pls(pool_dir, "pool", "list", "--json")
    assert r.returncode == 0
    assert not tmp.exists()
    assert json.loads(pls(pool_dir, "doctor", "--all", "--json").stdout)["leftovers"] == []


def test_sweeping_spares_live_creators_and_runs_on_create(pool_dir):
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    gone = pool_dir / f".old.plasmite.{dead_pid}.140000.tmp"
    mine = pool_dir / f".busy.plasmite.{os.getpid()}.140001.tmp"
    for p in (gone, mine):
        p.write_bytes(b"\0" * 4096)
    with Client(pool_dir) as client:
        client.create_pool("new").close()
        assert not gone.exists() and mine.exists()
        gone.write_bytes(b"")
        assert client.sweep_leftovers() == [str(gone)]
        client.list_pools()
        assert mine.exists()


# ------------------------------------------------------ filelock: admin lock
HOLD_ADMIN = textwrap.dedent(
    """
    import sys, time
    from filelock import FileLock
    with FileLock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


def test_admin_operations_wait_bounded_for_the_directory_lock(pool_dir):
    """create, delete, import and repair serialize on the pool directory's filelock and
    answer Busy (exit 5) when it stays taken longer than the bound."""
    assert pls(pool_dir, "pool", "create", "keep").returncode == 0
    holder = subprocess.Popen([PY, "-c", HOLD_ADMIN, str(pool_dir / ".plasmite.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        env = {"PLASMITE_LOCK_TIMEOUT": "300ms"}
        commands = [("pool", "create", "other"), ("pool", "delete", "keep")]
        if importlib.util.find_spec("plasmite_codecs") is not None:
            from upstream_pool_fixture import write_upstream_pool

            write_upstream_pool(pool_dir / "up.plasmite", [(time.time_ns(), [], {"n": 1})])
            commands.append(("pool", "import", "up", "imported"))
        for args in commands:
            r = pls(pool_dir, *args, env=env, timeout=30)
            assert r.returncode == 5, (args, r.stderr)
            assert f"directory is busy: process {holder.pid}" in (r.stdout + r.stderr).decode()
        from plasmite_core.doctor import repair_pool

        with pytest.raises(BusyError):
            repair_pool(pool_dir / "keep.plasmite", lock_timeout=0.2)
        r = pls(pool_dir, "feed", "keep", "{}", env=env)  # appends never take it
        assert r.returncode == 0, r.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=20)
    assert not (pool_dir / "other.plasmite").exists() and (pool_dir / "keep.plasmite").exists()
    assert not (pool_dir / "imported.plasmite").exists()
    assert pls(pool_dir, "pool", "delete", "keep").returncode == 0


PORTABLE_WRITER = textwrap.dedent(
    """
    import sys, warnings
    sys.modules["fcntl"] = None          # as where fcntl does not exist
    warnings.simplefilter("ignore")
    from plasmite import Client
    from plasmite_core import locks
    assert not locks.HAVE_FCNTL
    pool = Client(sys.argv[1], lock_timeout=30).open_pool("p")
    for i in range(int(sys.argv[2])):
        pool.append({"w": sys.argv[3], "i": i})
    """
)


def test_portable_write_lock_without_fcntl(pool_dir):
    """Where fcntl is missing the write lock is a filelock sidecar: two writer
    processes still produce every seq exactly once."""
    with Client(pool_dir) as client:
        client.create_pool("p", 4 * 1024 * 1024).close()
    procs = [subprocess.Popen([PY, "-c", PORTABLE_WRITER, str(pool_dir), "300", w]) for w in "ab"]
    for p in procs:
        assert p.wait(timeout=120) == 0
    with Client(pool_dir) as client, client.open_pool("p") as pool:
        msgs = list(pool)
    assert [m.seq for m in msgs] == list(range(1, 601))
    for w in "ab":
        assert [m.data["i"] for m in msgs if m.data["w"] == w] == list(range(300))


# ------------------------------------------------------------ item 9: names
@pytest.mark.parametrize("name", ["ab\n", "a" * 300, "..", ".hidden", "a..b", "sp ace", "tab\t", "ab\n.plasmite"])
def test_one_name_rule_in_the_api(pool_dir, name):
    with Client(pool_dir) as client:
        with pytest.raises(UsageError):
            client.create_pool(name)
        with pytest.raises(UsageError):
            client.open_pool(name)
    assert [p for p in pool_dir.iterdir() if not p.name.startswith(".plasmite")] == []


def test_long_or_newline_names_are_usage_in_the_cli(pool_dir):
    """Before: a 300-character name was an Io error (exit 8)."""
    for name in ("a" * 300, "ab\n", "./" + "a" * 300):
        for args in (("pool", "create", name), ("feed", name, "{}"), ("feed", "--create", name, "{}")):
            r = pls(pool_dir, *args)
            assert r.returncode == 2, (args, r.stderr)
            assert _error(r.stderr)["kind"] == "Usage"
    assert [p for p in pool_dir.iterdir() if not p.name.startswith(".plasmite")] == []


def test_server_refuses_a_name_with_a_trailing_newline(pool_dir):
    """Before: `{"pool":"ab\\n"}` created `ab\\n.plasmite` (`$` matched before
    the newline)."""
    pytest.importorskip("plasmite_serve")
    import urllib.error
    import urllib.request

    from plasmite_serve.testing import ServerProcess

    with ServerProcess(pool_dir) as server:
        for body in ({"pool": "ab\n"}, {"pool": "a" * 300}):
            req = urllib.request.Request(server.url("/v0/pools"), data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req, timeout=30)
            assert info.value.code == 400
            assert json.loads(info.value.read())["error"]["kind"] == "Usage"
    assert [p.name for p in pool_dir.iterdir() if p.name.endswith(".plasmite")] == []


# ------------------------------------------------------------ item 9: SIGINT
def test_follow_interrupted_writes_nothing_but_json_to_stderr(pool_dir):
    """Before: SIGINT made `pls follow` write a bare empty line to stderr."""
    assert pls(pool_dir, "feed", "--create", "c", '{"n":1}').returncode == 0
    proc = subprocess.Popen([*PLS, "--dir", str(pool_dir), "follow", "c", "--tail", "1", "--jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert json.loads(proc.stdout.readline())["seq"] == 1  # it is following now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert out == b""
    assert err == b"", err
