"""``pls follow``: the cookbook workflows and every flag, through real processes."""

from __future__ import annotations

import json
import signal
import time

import pytest

from cli_support import PtyProcess, error_of, jsonl, pls, spawn, started_following, wait_for


def feed(pool_dir, pool, data, *extra):
    r = pls("feed", pool, *extra, json.dumps(data) if not isinstance(data, str) else data, pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def started(proc, pool_dir, pool):
    """Wait until a spawned follower has the pool mapped (it starts at the live end)."""
    started_following(proc, pool_dir / f"{pool}.plasmite")


def test_ci_gate_returns_when_another_process_feeds_green(pool_dir):
    # README / cookbook: deploy.sh blocks on the gate; test-runner.sh feeds green.
    pls("pool", "create", "ci", pool_dir=pool_dir)
    gate = spawn("follow", "ci", "--where", '.data.status == "green"', "--one", pool_dir=pool_dir)
    try:
        started(gate, pool_dir, "ci")
        feed(pool_dir, "ci", {"status": "red", "commit": "0000000"})
        time.sleep(0.3)
        assert gate.poll() is None  # a red result does not open the gate
        r = pls("feed", "ci", "--create", '{"status": "green", "commit": "a1b2c3d", "suite": "unit"}',
                pool_dir=pool_dir)
        assert r.returncode == 0
        out, err = gate.communicate(timeout=20)
    finally:
        if gate.poll() is None:
            gate.kill()
    assert gate.returncode == 0, err
    msg = json.loads(out)  # default output: pretty JSON
    assert msg["data"] == {"status": "green", "commit": "a1b2c3d", "suite": "unit"}


def test_build_progress_cookbook(pool_dir):
    # Writer: progress steps, then a `done` tag. Watchers: live follow and a
    # deploy script blocking on --tag done --one.
    watcher = spawn("follow", "build", "--create", "--jsonl", pool_dir=pool_dir)
    try:
        started(watcher, pool_dir, "build")
        deploy = spawn("follow", "build", "--tag", "done", "--one", "--jsonl", pool_dir=pool_dir)
        started(deploy, pool_dir, "build")
        steps = [{"step": "compile", "pct": 0}, {"step": "compile", "pct": 100},
                 {"step": "test", "pct": 0}, {"step": "test", "pct": 100}]
        for s in steps:
            feed(pool_dir, "build", s)
        assert deploy.poll() is None
        feed(pool_dir, "build", {"step": "finished", "ok": True}, "--tag", "done")
        out, err = deploy.communicate(timeout=20)
        assert deploy.returncode == 0, err
        assert jsonl(out)[0]["data"] == {"step": "finished", "ok": True}
        wait_for(lambda: True)
        # "next morning": replay the history instantly.
        r = pls("follow", "build", "--since", "12h", "--replay", "0", "--jsonl", pool_dir=pool_dir)
        assert r.returncode == 0
        assert [m["data"] for m in jsonl(r.stdout)] == [*steps, {"step": "finished", "ok": True}]
    finally:
        watcher.send_signal(signal.SIGINT)
        out, _ = watcher.communicate(timeout=20)
    live = jsonl(out)
    assert [m["data"].get("step") for m in live] == ["compile", "compile", "test", "test", "finished"]
    assert watcher.returncode == 130


def test_tag_and_where_filters(pool_dir):
    pls("pool", "create", "telemetry", pool_dir=pool_dir)
    feed(pool_dir, "telemetry", {"service": "api", "sha": "f4e5d6c"}, "--tag", "deploy")
    feed(pool_dir, "telemetry", {"service": "api", "msg": "latency spike"}, "--tag", "alert")
    feed(pool_dir, "telemetry", {"service": "web", "rps": 1420}, "--tag", "metric")
    feed(pool_dir, "telemetry", {"service": "web", "msg": "5xx"}, "--tag", "alert")
    feed(pool_dir, "telemetry", {"service": "api", "msg": "down"}, "--tag", "alert", "--tag", "sev1")

    def run(*args):
        r = pls("follow", "telemetry", "--tail", "100", "--jsonl", "--timeout", "300ms", *args, pool_dir=pool_dir)
        assert r.returncode == 124, r.stderr
        return [m["data"] for m in jsonl(r.stdout)]

    assert [d["msg"] for d in run("--tag", "alert")] == ["latency spike", "5xx", "down"]
    assert [d["msg"] for d in run("--tag", "alert", "--where", '.data.service == "api"')] == ["latency spike", "down"]
    assert [d["msg"] for d in run("--tag", "alert", "--tag", "sev1")] == ["down"]
    assert run("--where", '.data.service == "web"', "--where", ".data.rps > 1000") == [{"service": "web", "rps": 1420}]
    # a runtime error in the expression is "no match", not a failure
    assert run("--where", ".data.msg | test(\"spike\")") == [{"service": "api", "msg": "latency spike"}]
    # --tail counts matching messages
    assert [d["msg"] for d in run("--tag", "alert", "--tail", "2")] == ["5xx", "down"]
    # --data-only prints the payload alone
    r = pls("follow", "telemetry", "--tail", "1", "--data-only", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    assert jsonl(r.stdout) == [{"service": "api", "msg": "down"}]


def test_live_tag_and_where_filter(pool_dir):
    pls("pool", "create", "t", pool_dir=pool_dir)
    f = spawn("follow", "t", "--tag", "alert", "--where", '.data.service == "api"', "--jsonl", pool_dir=pool_dir)
    try:
        started(f, pool_dir, "t")
        feed(pool_dir, "t", {"service": "api", "n": 1})
        feed(pool_dir, "t", {"service": "web", "n": 2}, "--tag", "alert")
        feed(pool_dir, "t", {"service": "api", "n": 3}, "--tag", "alert")
        feed(pool_dir, "t", {"service": "api", "n": 4}, "--tag", "alert", "--tag", "x")
        time.sleep(0.5)
    finally:
        f.send_signal(signal.SIGINT)
        out, _ = f.communicate(timeout=20)
    assert [m["data"]["n"] for m in jsonl(out)] == [3, 4]


def test_tail_then_live_and_one(pool_dir):
    pls("pool", "create", "p", pool_dir=pool_dir)
    for i in range(5):
        feed(pool_dir, "p", {"i": i})
    r = pls("follow", "p", "-n", "3", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    assert r.returncode == 124
    assert [m["data"]["i"] for m in jsonl(r.stdout)] == [2, 3, 4]
    r = pls("follow", "p", "--tail", "1", "--one", "--jsonl", pool_dir=pool_dir)
    assert r.returncode == 0
    assert [m["data"]["i"] for m in jsonl(r.stdout)] == [4]
    # without --tail, follow starts at the live end
    f = spawn("follow", "p", "--one", "--jsonl", pool_dir=pool_dir)
    started(f, pool_dir, "p")
    feed(pool_dir, "p", {"i": 99})
    out, _ = f.communicate(timeout=20)
    assert f.returncode == 0 and jsonl(out)[0]["data"] == {"i": 99}


def test_timeout_exits_124_and_resets_on_output(pool_dir):
    pls("pool", "create", "q", pool_dir=pool_dir)
    t0 = time.monotonic()
    r = pls("follow", "q", "--timeout", "300ms", pool_dir=pool_dir)
    assert r.returncode == 124 and r.stdout == ""
    assert time.monotonic() - t0 >= 0.3
    # Output keeps it alive: six messages ~0.4 s apart (> 2 s in all), timeout 2 s.
    f = spawn("follow", "q", "--timeout", "2s", "--jsonl", pool_dir=pool_dir)
    started(f, pool_dir, "q")
    for i in range(6):
        feed(pool_dir, "q", {"i": i})
        time.sleep(0.2)
    out, _ = f.communicate(timeout=20)
    assert f.returncode == 124
    assert [m["data"]["i"] for m in jsonl(out)] == list(range(6))


def test_since_relative_and_rfc3339(pool_dir):
    pls("pool", "create", "s", pool_dir=pool_dir)
    first = feed(pool_dir, "s", {"i": 0})
    time.sleep(1.2)
    second = feed(pool_dir, "s", {"i": 1})
    r = pls("follow", "s", "--since", "1h", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    assert [m["data"]["i"] for m in jsonl(r.stdout)] == [0, 1]
    r = pls("follow", "s", "--since", second["time"], "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    assert [m["seq"] for m in jsonl(r.stdout)] == [second["seq"]]
    assert first["seq"] < second["seq"]
    # a time in the future selects nothing and exits at once
    r = pls("follow", "s", "--since", "2999-01-01T00:00:00Z", pool_dir=pool_dir)
    assert r.returncode == 0 and r.stdout == ""
    r = pls("follow", "s", "--since", "yesterday", pool_dir=pool_dir)
    assert r.returncode == 2 and "--since" in error_of(r)["message"]


def _replay_arrivals(pool_dir, *args):
    """Run a replay and note when each output line arrives (pls flushes before each pause)."""
    proc = spawn("follow", "inc", "--jsonl", *args, pool_dir=pool_dir)
    arrivals = []
    for line in proc.stdout:
        arrivals.append((time.monotonic(), json.loads(line)))
    proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return arrivals


def test_replay_timing(pool_dir):
    pls("pool", "create", "inc", pool_dir=pool_dir)
    for i in range(3):
        feed(pool_dir, "inc", {"i": i})
        if i < 2:
            time.sleep(0.6)
    msgs = jsonl(pls("follow", "inc", "--tail", "3", "--jsonl", "--timeout", "100ms", pool_dir=pool_dir).stdout)
    from plasmite_core.envelope import parse_rfc3339

    span = (parse_rfc3339(msgs[2]["time"]) - parse_rfc3339(msgs[0]["time"])) / 1e9
    assert span >= 1.2

    def replay(*args):
        arrivals = _replay_arrivals(pool_dir, *args)
        assert [m["data"]["i"] for _, m in arrivals] == [0, 1, 2]
        return arrivals[-1][0] - arrivals[0][0]

    assert replay("--tail", "3", "--replay", "0") < span  # no pauses
    d1 = replay("--tail", "3", "--replay", "1")
    d2 = replay("--since", "1h", "--replay", "2")
    # The original spacing is reproduced at speed 1 and halved at speed 2.
    assert d1 >= span * 0.95
    assert d2 >= span / 2 * 0.95
    assert d2 < d1
    # --replay needs history to replay; speeds must be finite and >= 0.
    r = pls("follow", "inc", "--replay", "1", pool_dir=pool_dir)
    assert r.returncode == 2 and "--tail or --since" in error_of(r)["message"]
    r = pls("follow", "inc", "--tail", "1", "--replay", "-1", pool_dir=pool_dir)
    assert r.returncode == 2


def test_pretty_is_default_and_format_flags(pool_dir):
    pls("pool", "create", "f", pool_dir=pool_dir)
    feed(pool_dir, "f", {"a": [1, 2]})
    r = pls("follow", "f", "--tail", "1", "--one", pool_dir=pool_dir)
    assert r.stdout.startswith('{\n  "seq": 1,')
    assert json.loads(r.stdout)["data"] == {"a": [1, 2]}
    r = pls("follow", "f", "--tail", "1", "--one", "--format", "jsonl", pool_dir=pool_dir)
    assert r.stdout.count("\n") == 1
    # The JSON Lines envelope is byte-identical to fetch's.
    assert r.stdout == pls("fetch", "f", "1", pool_dir=pool_dir).stdout
    r = pls("follow", "f", "--jsonl", "--format", "pretty", pool_dir=pool_dir)
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage"
    # Even agreeing flags conflict (as upstream): refused at once, not a follow that never returns.
    r = pls("follow", "f", "--tail", "1", "--jsonl", "--format", "jsonl", pool_dir=pool_dir, timeout=30)
    err = error_of(r)
    assert r.returncode == 2 and err["kind"] == "Usage" and "--format jsonl" in err["hint"] and r.stdout == ""


def test_pretty_on_a_terminal_and_alias_peek(pool_dir):
    pls("pool", "create", "term", pool_dir=pool_dir)
    feed(pool_dir, "term", {"hello": "tty"})
    p = PtyProcess("peek", "term", "--tail", "1", "--one", pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        assert '"hello": "tty"' in p.text()
    finally:
        p.close()


def test_where_errors_are_usage(pool_dir):
    pls("pool", "create", "w", pool_dir=pool_dir)
    feed(pool_dir, "w", {"x": 1})
    r = pls("follow", "w", "--where", ".data |||", pool_dir=pool_dir)
    assert r.returncode == 2
    err = error_of(r)
    assert err["kind"] == "Usage" and "jq" in err["message"]
    r = pls("follow", "w", "--tail", "1", "--where", ".data.x", pool_dir=pool_dir)
    assert r.returncode == 2
    assert "booleans" in error_of(r)["message"]


def test_missing_pool_and_create(pool_dir):
    r = pls("follow", "nope", "--timeout", "100ms", pool_dir=pool_dir)
    assert r.returncode == 3
    assert "--create" in error_of(r)["hint"]
    r = pls("follow", "nope", "--create", "--timeout", "100ms", pool_dir=pool_dir)
    assert r.returncode == 124
    assert (pool_dir / "nope.plasmite").exists()


def test_no_notify_still_delivers(pool_dir):
    pls("pool", "create", "nn", pool_dir=pool_dir)
    f = spawn("follow", "nn", "--no-notify", "--one", "--jsonl", pool_dir=pool_dir)
    started(f, pool_dir, "nn")
    feed(pool_dir, "nn", {"polled": True})
    out, _ = f.communicate(timeout=20)
    assert f.returncode == 0 and jsonl(out)[0]["data"] == {"polled": True}


def test_drop_notice_when_a_follower_falls_behind(pool_dir):
    # A small pool; the follower is stopped while writers wrap the ring twice.
    pls("pool", "create", "--size", "64K", "tiny", pool_dir=pool_dir)
    # stdout to files: a pipe nobody drains would fill and block the followers.
    out_f = open(pool_dir.parent / "f.out", "w+b")
    out_q = open(pool_dir.parent / "q.out", "w+b")
    f = spawn("follow", "tiny", "--jsonl", pool_dir=pool_dir, stdout=out_f)
    quiet = spawn("follow", "tiny", "--jsonl", "--quiet-drops", pool_dir=pool_dir, stdout=out_q)
    try:
        started(f, pool_dir, "tiny")
        started(quiet, pool_dir, "tiny")
        feed(pool_dir, "tiny", {"i": -1})
        time.sleep(0.3)
        f.send_signal(signal.SIGSTOP)
        quiet.send_signal(signal.SIGSTOP)
        payload = "".join(json.dumps({"i": i, "pad": "x" * 200}) + "\n" for i in range(2000))
        assert pls("feed", "tiny", pool_dir=pool_dir, input=payload).returncode == 0
        f.send_signal(signal.SIGCONT)
        quiet.send_signal(signal.SIGCONT)
        time.sleep(1.0)
    finally:
        for p in (f, quiet):
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGINT)
    _, err = f.communicate(timeout=20)
    _, qerr = quiet.communicate(timeout=20)
    out = (pool_dir.parent / "f.out").read_bytes()
    qout = (pool_dir.parent / "q.out").read_bytes()
    notices = [json.loads(x)["notice"] for x in err.decode().splitlines() if x.strip()]
    assert notices, err
    n = notices[0]
    assert n["kind"] == "drop" and n["cmd"] == "follow" and n["pool"] == "tiny"
    assert n["details"]["dropped_count"] > 0
    assert n["details"]["next_seen_seq"] - n["details"]["last_seen_seq"] - 1 == n["details"]["dropped_count"]
    seqs = [m["seq"] for m in jsonl(out.decode())]
    assert seqs == sorted(seqs) and seqs[-1] == 2001, (seqs[-5:], err)
    assert qerr.decode().strip() == ""
    assert [m["seq"] for m in jsonl(qout.decode())][-1] == 2001


@pytest.mark.parametrize("flag", [["--replay", "1", "--tail", "1"],
                                  ["--no-notify"], ["--quiet-drops"]])
def test_remote_follow_rejects_local_only_flags(pool_dir, flag):
    # (--since depends on what the transport declares: refused once the pool is
    # open, see test_cli_third_party_transport.py)
    r = pls("follow", "http://127.0.0.1:9/chat", *flag, pool_dir=pool_dir)
    assert r.returncode == 2
    assert error_of(r)["kind"] == "Usage"


def test_malformed_remote_ref(pool_dir):
    r = pls("follow", "http://127.0.0.1:9/v0/pools/chat/tail", pool_dir=pool_dir)
    assert r.returncode == 2
    assert "shorthand" in error_of(r)["hint"]
