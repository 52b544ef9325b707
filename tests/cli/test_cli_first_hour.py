"""The first hour of a new user (issue 12): what the README's steps lead to.

Remote pools created from the CLI, the server's "try it" lines, hints in CLI
terms, ``follow --tail N --one`` explaining its wait, a missing ``--file``,
``--color always`` on JSON, completion for PowerShell and Elvish, and the small
wording fixes. Every test drives real ``pls`` processes (and a real server on
loopback where a URL is involved).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_support import PLS, PtyProcess, env_for, error_of, jsonl, pls, wait_for

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _server(pool_dir, *args):
    from plasmite_serve.testing import ServerProcess

    return ServerProcess(pool_dir, *args)


def fetch_data(pool_dir, pool, seq):
    r = pls("fetch", pool, str(seq), pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["data"]


# ------------------------------------------------------------ remote pools

def test_remote_pool_create_and_create_flags(tmp_path, pool_dir):
    served = tmp_path / "served" / "pools"  # missing: serve says it creates it
    with _server(served) as server:
        base = server.base_url
        assert f"pool directory {served}" in server.stderr() and "did not exist; created it" in server.stderr()
        r = pls("pool", "create", "--json", f"{base}/demo", pool_dir=pool_dir)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["created"][0]["path"] == str(served / "demo.plasmite")
        r = pls("pool", "create", f"{base}/demo", pool_dir=pool_dir)
        assert r.returncode == 4 and "pool delete" not in error_of(r)["hint"]
        r = pls("pool", "create", "--index-capacity", "8", f"{base}/other", pool_dir=pool_dir)
        assert r.returncode == 2 and "--index-capacity" in error_of(r)["message"]

        r = pls("feed", f"{base}/fresh", '{"a":1}', pool_dir=pool_dir)
        err = error_of(r)
        assert r.returncode == 3
        assert f"pls pool create {base}/fresh" in err["hint"] and "--create" in err["hint"]
        assert "POST /v0" not in err["hint"]
        r = pls("feed", f"{base}/fresh", "--create", "--create-size", "128K", '{"a":1}', pool_dir=pool_dir)
        assert r.returncode == 0, r.stderr
        assert (served / "fresh.plasmite").stat().st_size == 128 * 1024
        r = pls("follow", f"{base}/watched", "--create", "--timeout", "300ms", pool_dir=pool_dir)
        assert r.returncode == 124 and (served / "watched.plasmite").exists()
        r = pls("duplex", f"{base}/talk", "--create", "--me", "bot", input="hello\n", pool_dir=pool_dir)
        assert r.returncode == 0, r.stderr
        assert pls("fetch", str(served / "talk.plasmite"), "1", pool_dir=pool_dir).stdout.count("hello") == 1


def test_serve_check_reports_a_missing_pool_directory(tmp_path, pool_dir):
    r = pls("serve", "--dir", str(tmp_path / "nope"), "check", pool_dir=pool_dir)
    assert r.returncode == 0 and "missing: `pls serve` creates it" in r.stdout
    r = pls("serve", "--dir", str(tmp_path / "nope"), "check", "--json", pool_dir=pool_dir)
    assert json.loads(r.stdout)["check"]["pool_dir_exists"] is False
    assert not (tmp_path / "nope").exists()  # check changes nothing


def test_remote_hints_name_cli_flags(tmp_path, pool_dir):
    token = tmp_path / "token.txt"
    token.write_text("right-token\n")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("wrong-token\n")
    with _server(pool_dir, "--token-file", str(token)) as server:
        url = f"{server.base_url}/demo"
        r = pls("pool", "create", url, pool_dir=pool_dir)
        err = error_of(r)
        assert r.returncode == 6 and "--token-file" in err["hint"] and "Authorization" not in err["hint"]
        r = pls("feed", url, "--create", "--token-file", str(wrong), "{}", pool_dir=pool_dir)
        assert r.returncode == 6 and "--token-file" in error_of(r)["hint"]
        r = pls("pool", "create", url, "--token-file", str(token), pool_dir=pool_dir)
        assert r.returncode == 0, r.stderr
    with _server(pool_dir, "--access", "read-only") as server:
        r = pls("pool", "create", f"{server.base_url}/nope", pool_dir=pool_dir)
        assert r.returncode == 6 and "--access" in error_of(r)["hint"]
        r = pls("pool", "create", "--token-file", str(token), "local", pool_dir=pool_dir)
        assert r.returncode == 2 and "remote" in error_of(r)["message"]


def test_serve_try_it_lines_work_as_printed(pool_dir):
    p = PtyProcess("serve", "--bind", "127.0.0.1:0", pool_dir=pool_dir)
    try:
        text = p.expect("Ctrl-C to stop")
        lines = [line.strip() for line in text.splitlines()]
        tries = lines[lines.index("Try it:") + 1:lines.index("Try it:") + 3]
        assert tries[0].startswith("pls feed ") and tries[1].startswith("pls follow ")
        r = pls(*shlex.split(tries[0])[1:], pool_dir=pool_dir)
        assert r.returncode == 0, (tries[0], r.stderr)
        # follow runs until Ctrl-C; here it ends after an idle second (exit 124).
        r = pls(*shlex.split(tries[1])[1:], "--timeout", "1s", pool_dir=pool_dir)
        assert r.returncode == 124, (tries[1], r.stderr)
        assert json.loads(r.stdout)["data"] == {"hello": "world"}
    finally:
        p.close()


def test_serve_init_printed_commands_work(tmp_path, pool_dir):
    import socket

    from cli_support import spawn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = pls("serve", "init", "--output-dir", str(tmp_path / "tls"), "--bind", f"127.0.0.1:{port}",
            pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    init = json.loads(r.stdout)["init"]
    server = spawn(*shlex.split(init["server_commands"][0])[1:], pool_dir=pool_dir, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.poll() is not None or _connects(port), timeout=30)
        assert server.poll() is None, server.stderr.read().decode()
        feed, follow = init["client_commands"]
        r = pls(*shlex.split(feed)[1:], pool_dir=pool_dir)
        assert r.returncode == 0, (feed, r.stderr)
        r = pls(*shlex.split(follow)[1:], "--timeout", "1s", pool_dir=pool_dir)
        assert r.returncode == 124 and json.loads(r.stdout)["data"] == {"hello": "world"}, r.stderr
    finally:
        server.terminate()
        server.wait(15)


def _connects(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


# ----------------------------------------------------------------- follow

def test_follow_tail_one_explains_its_wait(pool_dir):
    pls("feed", "chat", "--create", '{"n":1}', pool_dir=pool_dir)
    pls("feed", "chat", '{"n":2}', pool_dir=pool_dir)
    help_text = pls("follow", "--help", pool_dir=pool_dir).stdout
    assert "--tail N --one waits until N matching messages exist" in " ".join(help_text.split())
    p = PtyProcess("follow", "chat", "--tail", "5", "--one", "--jsonl", pool_dir=pool_dir)
    try:
        p.expect("waiting: the pool has 2 of the 5 matching messages")
        for n in (3, 4, 5):
            assert pls("feed", "chat", json.dumps({"n": n}), pool_dir=pool_dir).returncode == 0
        assert p.finish() == 0
        assert '"data":{"n":5}' in p.text()
    finally:
        p.close()
    # Not on a terminal: no notice, the output stays machine-readable.
    r = pls("follow", "chat", "--tail", "9", "--one", "--timeout", "300ms", pool_dir=pool_dir)
    assert r.returncode == 124 and "waiting" not in r.stderr


# ------------------------------------------------------------------- feed

def test_feed_missing_file_is_io_about_the_file(tmp_path, pool_dir):
    for extra in ((), ("--create",)):
        r = pls("feed", "s1", *extra, "--file", str(tmp_path / "missing.jsonl"), pool_dir=pool_dir)
        err = error_of(r)
        assert r.returncode == 8 and err["kind"] == "Io", err
        assert "missing.jsonl" in err["message"] and "--file" in err["hint"] and "pool" not in err["hint"]
    assert not (pool_dir / "s1.plasmite").exists()  # nothing created for an input that is not there


def test_empty_tag_has_a_hint(pool_dir):
    pls("pool", "create", "chat", pool_dir=pool_dir)
    for args in (("feed", "chat", "--tag", "", "{}"), ("follow", "chat", "--tag", "", "--timeout", "1s")):
        r = pls(*args, pool_dir=pool_dir)
        err = error_of(r)
        assert r.returncode == 2 and "--tag" in err["hint"], err


# ---------------------------------------------------------------- wording

def test_small_wording(pool_dir):
    pls("feed", "chat", "--create", "{}", pool_dir=pool_dir)
    r = pls("doctor", "chat", pool_dir=pool_dir)
    assert "1 message checked" in r.stdout
    pls("feed", "chat", "{}", pool_dir=pool_dir)
    assert "2 messages checked" in pls("doctor", "chat", pool_dir=pool_dir).stdout

    err = error_of(pls("fetch", "chat", "abc", pool_dir=pool_dir))
    assert "not a valid integer" in err["message"] and "range" not in err["message"]

    r = pls("tap", "build", "--create", "sh", "-c", "echo hi", pool_dir=pool_dir)
    assert r.returncode == 2 and "-- sh -c" in error_of(r)["hint"]

    r = pls("pool", "list", "--dir", "X", pool_dir=pool_dir)
    assert r.returncode == 2 and "before the command" in error_of(r)["hint"]
    assert "pls --dir VALUE pool list" in error_of(r)["hint"]

    r = pls("pool", "create", "--size", "10T", "big", pool_dir=pool_dir)
    assert r.returncode == 2 and "1T" in error_of(r)["hint"]
    assert not (pool_dir / "big.plasmite").exists()


# ---------------------------------------------------------------- duplex

def test_duplex_terminal_prints_one_line_per_message(pool_dir):
    p = PtyProcess("duplex", "room", "--create", "--me", "carol", "--echo-self", pool_dir=pool_dir)
    try:
        wait_for(lambda: (pool_dir / "room.plasmite").exists())
        from cli_support import started_following

        started_following(p.proc, pool_dir / "room.plasmite")
        pls("feed", "room", '{"from":"dave","msg":"hi carol"}', pool_dir=pool_dir)
        pls("feed", "room", '{"temp":21}', pool_dir=pool_dir)
        p.send("note to self\n")
        text = p.expect("carol: note to self")
        assert re.search(r"^\d\d:\d\d:\d\d dave: hi carol$", text, re.M), text
        assert re.search(r'^\d\d:\d\d:\d\d \{"temp":21\}$', text, re.M), text
        assert '"msg"' not in text
    finally:
        p.close()


def test_duplex_wraps_piped_text_with_me(pool_dir):
    r = pls("duplex", "chat", "--create", "--me", "bot", input='boot done\n\n{"from":"bot","msg":"json"}\nready',
            pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    msgs = jsonl(pls("follow", "chat", "--tail", "9", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir).stdout)
    assert [m["data"] for m in msgs] == [{"from": "bot", "msg": "boot done"}, {"from": "bot", "msg": "json"},
                                        {"from": "bot", "msg": "ready"}]


# ------------------------------------------------------- colour, completion

def test_color_always_colours_json(pool_dir):
    pls("feed", "chat", "--create", '{"n":1,"ok":true,"s":"x"}', pool_dir=pool_dir)
    for args in (("fetch", "chat", "1"), ("follow", "chat", "--tail", "1", "--one"),
                 ("follow", "chat", "--tail", "1", "--one", "--jsonl"), ("pool", "info", "chat", "--json")):
        r = pls("--color", "always", *args, pool_dir=pool_dir)
        assert r.returncode == 0, r.stderr
        assert "\x1b[34m" in r.stdout and "\x1b[36m" in r.stdout, args  # keys, numbers
        json.loads(ANSI.sub("", r.stdout))  # the same JSON once the colours are removed
        plain = pls(*args, pool_dir=pool_dir).stdout
        assert "\x1b[" not in plain
    colored = pls("--color", "always", "fetch", "chat", "1", pool_dir=pool_dir).stdout
    assert '\x1b[35mtrue\x1b[0m' in colored and '\x1b[32m"x"\x1b[0m' in colored


def _complete(pool_dir, shell: str, words: str) -> list[str]:
    env = env_for(pool_dir, _PLS_COMPLETE=f"{shell}_complete", COMP_WORDS=words)
    out = subprocess.run(PLS, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return [line.split("\t")[1] for line in out.stdout.decode().splitlines()]


def test_completion_powershell_and_elvish(pool_dir):
    pls("pool", "create", "chat", "chores", pool_dir=pool_dir)
    for shell in ("powershell", "elvish"):
        r = pls("completion", shell, pool_dir=pool_dir)
        assert r.returncode == 0 and "plasmite" in r.stdout
    assert "Register-ArgumentCompleter" in pls("completion", "powershell", pool_dir=pool_dir).stdout
    assert _complete(pool_dir, "powershell", "pls fo") == ["follow"]
    assert _complete(pool_dir, "powershell", "pls follow ch") == ["chat", "chores"]
    modes = _complete(pool_dir, "elvish", "pls\nfeed\n--in\n")  # the choices of --in
    assert {"auto", "jsonl", "json", "json-seq", "event"} <= set(modes) and "--in" not in modes


@pytest.mark.skipif(shutil.which("elvish") is None, reason="elvish is not installed (apt-get install elvish)")
def test_completion_script_runs_in_elvish(tmp_path, pool_dir):
    """The generated script in a real Elvish; its edit: calls (interactive only) become `put`."""
    pls("pool", "create", "chat", pool_dir=pool_dir)
    script = pls("completion", "elvish", pool_dir=pool_dir).stdout
    script = script.replace("edit:complex-candidate", "put").replace("edit:complete-filename", "put")
    script = "\n".join(line for line in script.splitlines() if "arg-completer" not in line)
    script += "\necho (to-string [($_pls_completion pls fo)])\necho (to-string [($_pls_completion pls fetch c)])\n"
    f = tmp_path / "t.elv"
    f.write_text(script)
    bindir = Path(PLS[0]).parent
    env = env_for(pool_dir, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run(["elvish", "-norc", str(f)], env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split("\n")[:2] == ["[follow]", "[chat]"]
