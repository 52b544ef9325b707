"""``pls duplex`` (terminal chat between two processes, piped mode) and ``pls tap``."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from cli_support import PtyProcess, error_of, jsonl, pls, spawn, started_following, wait_for


def messages(pool_dir, pool):
    r = pls("follow", pool, "--tail", "10000", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    return jsonl(r.stdout)


# ----------------------------------------------------------------- duplex

def test_duplex_chat_between_two_terminals(pool_dir):
    alice = PtyProcess("duplex", "chat", "--create", "--me", "alice", "--jsonl", pool_dir=pool_dir)
    bob = None
    try:
        wait_for(lambda: (pool_dir / "chat.plasmite").exists())
        started_following(alice.proc, pool_dir / "chat.plasmite")
        alice.send("hello bob\n")
        wait_for(lambda: len(messages(pool_dir, "chat")) == 1)
        bob = PtyProcess("duplex", "chat", "--me", "bob", "--tail", "20", "--jsonl", pool_dir=pool_dir)
        bob.expect('"msg":"hello bob"')  # history via --tail
        bob.send("hi alice\n")
        alice.expect('"msg":"hi alice"')
        bob.send("   \n")  # blank lines are not sent
        alice.send("bye\n")
        bob.expect('"msg":"bye"')
        # Each side hides its own messages.
        assert '"from":"alice"' not in alice.text()
        assert '"from":"bob"' not in bob.text()
        bob.send("\x04")  # Ctrl-D: end of input ends the session
        assert bob.finish() == 0
    finally:
        alice.close()
        if bob is not None:
            bob.close()
    msgs = [m["data"] for m in messages(pool_dir, "chat")]
    assert msgs == [{"from": "alice", "msg": "hello bob"}, {"from": "bob", "msg": "hi alice"},
                    {"from": "alice", "msg": "bye"}]


def test_duplex_echo_self_and_pretty(pool_dir):
    p = PtyProcess("duplex", "room", "--create", "--me", "carol", "--echo-self", "--format", "pretty",
                   pool_dir=pool_dir)
    try:
        wait_for(lambda: (pool_dir / "room.plasmite").exists())
        started_following(p.proc, pool_dir / "room.plasmite")
        p.send("note to self\n")
        out = p.expect('"msg": "note to self"')
        assert '"from": "carol"' in out  # pretty output when asked for
    finally:
        p.close()


def test_duplex_terminal_needs_me(pool_dir):
    pls("pool", "create", "chat", pool_dir=pool_dir)
    p = PtyProcess("--color", "never", "duplex", "chat", pool_dir=pool_dir)
    try:
        assert p.finish() == 2
        assert "error: terminal input needs --me" in p.text()
    finally:
        p.close()


def test_duplex_piped_stream_sends_and_ends_at_eof(pool_dir):
    pls("pool", "create", "chat", pool_dir=pool_dir)
    watcher = spawn("follow", "chat", "--jsonl", "--timeout", "3s", pool_dir=pool_dir)
    started_following(watcher, pool_dir / "chat.plasmite")
    r = pls("duplex", "chat", "--me", "bot", pool_dir=pool_dir,
            input='{"from":"bot","msg":"boot complete"}\n{"from":"bot","msg":"ready"}')
    assert r.returncode == 0, r.stderr
    out, _ = watcher.communicate(timeout=20)
    assert [m["data"]["msg"] for m in jsonl(out.decode())] == ["boot complete", "ready"]


def test_duplex_timeout_exits_124(pool_dir):
    pls("pool", "create", "quiet", pool_dir=pool_dir)
    r_in, w_in = os.pipe()  # stdin that stays open: only the timeout can end it
    try:
        p = spawn("duplex", "quiet", "--me", "x", "--timeout", "400ms", pool_dir=pool_dir, stdin=r_in)
        rc = p.wait(timeout=20)
    finally:
        os.close(w_in)
        os.close(r_in)
    assert rc == 124


# -------------------------------------------------------------------- tap

def test_tap_records_lines_between_lifecycle_messages(pool_dir):
    r = pls("tap", "build", "--create", "--tag", "ci", "--",
            sys.executable, "-c", "import sys; print('out 1'); print('err 1', file=sys.stderr); print('out 2')",
            pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "out 1\nout 2\n"  # passed through
    assert "err 1" in r.stderr
    msgs = messages(pool_dir, "build")
    start, *lines, end = msgs
    assert start["data"]["kind"] == "start" and start["meta"]["tags"] == ["lifecycle"]
    assert start["data"]["cmd"][0] == sys.executable and isinstance(start["data"]["pid"], int)
    assert sorted((m["data"]["stream"], m["data"]["line"]) for m in lines) == [
        ("stderr", "err 1"), ("stdout", "out 1"), ("stdout", "out 2")]
    assert all(m["data"]["kind"] == "line" and m["meta"]["tags"] == ["ci"] for m in lines)
    stdout_lines = [m["data"]["line"] for m in lines if m["data"]["stream"] == "stdout"]
    assert stdout_lines == ["out 1", "out 2"]
    assert end["data"]["kind"] == "exit" and end["data"]["code"] == 0
    assert isinstance(end["data"]["elapsed_ms"], int) and end["meta"]["tags"] == ["lifecycle"]
    # cookbook: filter only stderr lines
    r = pls("follow", "build", "--tail", "10", "--where", '.data.stream == "stderr"', "--jsonl",
            "--timeout", "200ms", pool_dir=pool_dir)
    assert [m["data"]["line"] for m in jsonl(r.stdout)] == ["err 1"]


def test_tap_exit_status_quiet_and_stdin(pool_dir):
    r = pls("tap", "t", "--create", "-q", "--", sys.executable, "-c",
            "import sys; data = sys.stdin.read(); print(data.upper()); sys.exit(3)",
            pool_dir=pool_dir, input="piped in")
    assert r.returncode == 3
    assert r.stdout == ""  # -q: no passthrough
    msgs = messages(pool_dir, "t")
    assert msgs[1]["data"]["line"] == "PIPED IN"
    assert msgs[-1]["data"] == {**msgs[-1]["data"], "kind": "exit", "code": 3}


def test_tap_forwards_sigterm_and_exits_with_signal_status(pool_dir, tmp_path):
    ready = tmp_path / "ready"
    script = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "print('waiting', flush=True)\n"
        "time.sleep(60)\n"
    )
    p = spawn("tap", "sig", "--create", "--", sys.executable, "-c", script, pool_dir=pool_dir)
    try:
        wait_for(ready.exists, timeout=20)
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + signal.SIGTERM
    last = messages(pool_dir, "sig")[-1]["data"]
    assert last["kind"] == "exit" and last["signal"] == "SIGTERM" and "code" not in last


def test_tap_sigint_forwarded_to_a_child_that_handles_it(pool_dir, tmp_path):
    ready = tmp_path / "ready"
    script = (
        "import pathlib, signal, sys, time\n"
        "def bye(*_):\n"
        "    print('got SIGINT', flush=True); sys.exit(7)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "time.sleep(60)\n"
    )
    p = spawn("tap", "sigint", "--create", "--", sys.executable, "-c", script, pool_dir=pool_dir)
    try:
        wait_for(ready.exists, timeout=20)
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)  # only tap gets it; tap forwards it
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 7
    data = [m["data"] for m in messages(pool_dir, "sigint")]
    assert {"kind": "line", "stream": "stdout", "line": "got SIGINT"} in data
    assert data[-1]["code"] == 7


def test_tap_usage_errors(pool_dir):
    r = pls("tap", "x", "--create", "--", "definitely-not-a-command-xyz", pool_dir=pool_dir)
    assert r.returncode == 2 and "command not found" in error_of(r)["message"]
    r = pls("tap", "x", "--create", pool_dir=pool_dir)
    assert r.returncode == 2 and "needs a command" in error_of(r)["message"]
    r = pls("tap", "http://127.0.0.1:9/x", "--", "true", pool_dir=pool_dir)
    assert r.returncode == 2 and "local" in error_of(r)["message"]
    r = pls("tap", "missing", "--", "true", pool_dir=pool_dir)
    assert r.returncode == 3 and error_of(r)["kind"] == "NotFound"
    r = pls("tap", "x", "--create-size", "1M", "--", "true", pool_dir=pool_dir)
    assert r.returncode == 2


def test_tap_summary_on_a_terminal(pool_dir):
    p = PtyProcess("tap", "tt", "--create", "--", sys.executable, "-c", "print('line')", pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        out = p.text()
        assert "tapping tt <- " in out and "tapped 1 lines" in out and "-> tt exit 0" in out
    finally:
        p.close()
    assert json.loads(pls("fetch", "tt", "2", pool_dir=pool_dir).stdout)["data"]["line"] == "line"
