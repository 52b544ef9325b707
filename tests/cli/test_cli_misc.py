"""version, completion, plugins, doctor, --help accuracy, error envelopes, lazy start-up."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import textwrap

import pytest

from cli_support import PLS, PtyProcess, env_for, error_of, pls, started_following


# ---------------------------------------------------------------- version

def test_version_json_when_piped_text_on_terminal(pool_dir):
    r = pls("version", pool_dir=pool_dir)
    v = json.loads(r.stdout)
    assert v["name"] == "plasmite" and re.match(r"^\d+\.\d+\.\d+", v["version"])
    p = PtyProcess("version", pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        assert p.text().startswith(f"plasmite {v['version']}")
    finally:
        p.close()
    assert pls("--version", pool_dir=pool_dir).stdout.strip() == f"plasmite {v['version']}"


# ------------------------------------------------------------- completion

@pytest.fixture
def pls_on_path(tmp_path):
    """A `pls` and a `plasmite` executable on PATH that run this checkout's CLI."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("pls", "plasmite"):
        exe = bindir / name
        exe.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m plasmite_cli \"$@\"\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


def bash(script: str, env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)


def test_bash_completion_loads_and_completes(pool_dir, pls_on_path):
    pls("pool", "create", "alpha", pool_dir=pool_dir)
    pls("pool", "create", "beta", pool_dir=pool_dir)
    env = env_for(pool_dir, PATH=f"{pls_on_path}{os.pathsep}{os.environ['PATH']}")
    r = bash("source <(pls completion bash) && complete -p pls && complete -p plasmite", env)
    assert r.returncode == 0, r.stderr
    assert "_pls_completion pls" in r.stdout and "_pls_completion plasmite" in r.stdout

    def complete(words: str) -> list[str]:
        script = (
            "source <(pls completion bash)\n"
            f"COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1))\n"
            "_pls_completion ${COMP_WORDS[0]}\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        r = bash(script, env)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert "follow" in complete("pls fo") and "feed" not in complete("pls fo")
    assert {"feed", "fetch"} <= set(complete("plasmite fe"))
    assert "--where" in complete("pls follow --wh")
    assert set(complete("pls follow a")) == {"alpha"}  # pool names from the pool dir
    assert set(complete("pls feed x --durability f")) == {"fast", "flush"}


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef pls"), ("fish", "complete --no-files --command pls")])
def test_zsh_and_fish_scripts(pool_dir, shell, marker):
    r = pls("completion", shell, pool_dir=pool_dir)
    assert r.returncode == 0 and marker in r.stdout and "plasmite" in r.stdout


def test_completion_unknown_shell(pool_dir):
    r = pls("completion", "tcsh", pool_dir=pool_dir)
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage"


# ---------------------------------------------------------------- plugins

def write_plugin(site, name: str, body: str):
    """A minimal installed distribution with a `plasmite` entry point."""
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(body))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[plasmite]\n{name} = {name}\n")


def test_third_party_command_arrives_through_the_hook(pool_dir, tmp_path):
    site = tmp_path / "site"
    write_plugin(site, "hello_plasmite", """
        import click, pluggy
        hookimpl = pluggy.HookimplMarker("plasmite")

        @click.command(short_help="Say hello from a plugin.")
        @click.argument("who")
        def hello(who):
            click.echo(f"hello {who}")

        @hookimpl
        def register_commands(cli):
            cli.add_command(hello)
    """)
    env = env_for(pool_dir, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
                  PLASMITE_LOAD_PLUGINS="hello_plasmite")  # tox loads only this project's plugins otherwise
    r = pls("hello", "world", pool_dir=pool_dir, env=env)
    assert r.returncode == 0 and r.stdout == "hello world\n", r.stderr
    assert "Say hello from a plugin." in pls("--help", pool_dir=pool_dir, env=env).stdout
    plugins = json.loads(pls("plugins", "--json", pool_dir=pool_dir, env=env).stdout)["plugins"]
    by_name = {p["name"]: p for p in plugins}
    assert by_name["hello_plasmite"]["hooks"] == ["register_commands"]
    assert by_name["cli"]["distribution"] == "plasmite-cli"  # built-ins use the same hook
    assert "register_filters" in by_name["jq"]["hooks"]
    # Installed but not named: PLASMITE_LOAD_PLUGINS="" keeps it out, built-ins stay.
    r = pls("hello", "world", pool_dir=pool_dir, env={**env, "PLASMITE_LOAD_PLUGINS": ""})
    assert r.returncode == 2 and pls("--help", pool_dir=pool_dir, env={**env, "PLASMITE_LOAD_PLUGINS": ""}).returncode == 0


def test_broken_plugin_does_not_break_builtins(pool_dir, tmp_path):
    site = tmp_path / "site"
    write_plugin(site, "broken_plasmite", """
        import pluggy
        hookimpl = pluggy.HookimplMarker("plasmite")

        @hookimpl
        def register_commands(cli):
            raise RuntimeError("boom")
    """)
    env = env_for(pool_dir, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
                  PLASMITE_LOAD_PLUGINS="broken_plasmite")  # tox loads only this project's plugins otherwise
    assert pls("pool", "create", "ok", pool_dir=pool_dir, env=env).returncode == 0
    r = pls("--help", pool_dir=pool_dir, env=env)
    assert r.returncode == 0 and "feed" in r.stdout
    assert "boom" in r.stderr and "Traceback" not in r.stderr


def test_builtin_commands_do_not_scan_entry_points(pool_dir):
    # The one-shot hot path: no entry-point scan, no plugin module imported.
    pls("pool", "create", "fast", pool_dir=pool_dir)
    code = textwrap.dedent("""
        import sys
        from plasmite_cli.main import run  # what the pls console script calls
        rc = run(["feed", "fast", '{"x": 1}'])
        loaded = sorted(m for m in sys.modules if m.startswith(("plasmite_jq", "plasmite_serve",
                        "plasmite_cli.builtin", "plasmite_cli.commands", "importlib.metadata", "click")))
        print(rc, loaded, file=sys.stderr)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for(pool_dir),
                       timeout=60)
    assert r.stderr.strip() == "0 []", r.stderr


def test_oneshot_feed_lean_path_skips_msgspec_and_stores_same_bytes(pool_dir):
    # A plain object takes the lean path (no msgspec import); a float written
    # with an exponent falls back to the full path. Both store what Pool.append would.
    pls("pool", "create", "lean", pool_dir=pool_dir)
    code = textwrap.dedent("""
        import sys
        from plasmite_cli.main import run
        rc = run(["feed", "lean", sys.argv[1]])
        print(rc, "msgspec" in sys.modules, file=sys.stderr)
    """)
    for data, heavy in (('{"x": [1, -2, true, null, "\\u00e9\\n"], "y": {}}', False), ('{"x": 1e300}', True)):
        r = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True,
                           env=env_for(pool_dir), timeout=60)
        assert r.stderr.strip() == f"0 {heavy}", r.stderr
        assert json.loads(r.stdout)["seq"] >= 1
    from plasmite_core.client import Client

    with Client(pool_dir) as c, c.open_pool("lean") as p:
        assert p.get(1).data == {"x": [1, -2, True, None, "\u00e9\n"], "y": {}}
        assert p.get(2).data == {"x": 1e300}
        assert p.get(1).data_json() == b'{"x":[1,-2,true,null,"\xc3\xa9\\n"],"y":{}}'


# ----------------------------------------------------------------- doctor

def test_doctor_ok_and_corrupt(pool_dir):
    pls("pool", "create", "good", pool_dir=pool_dir)
    pls("pool", "create", "bad", pool_dir=pool_dir)
    pls("feed", "good", '{"fine": true}', pool_dir=pool_dir)
    pls("feed", "bad", json.dumps({"payload": "x" * 64}), pool_dir=pool_dir)
    r = pls("doctor", "good", pool_dir=pool_dir)
    assert r.returncode == 0 and r.stdout.startswith("OK")
    info = json.loads(pls("pool", "info", "bad", "--json", pool_dir=pool_dir).stdout)
    path = pool_dir / "bad.plasmite"
    raw = bytearray(path.read_bytes())
    at = raw.find(b"x" * 64, info["ring_offset"])
    assert at > 0
    raw[at : at + 8] = b"CORRUPT!"
    path.write_bytes(bytes(raw))

    r = pls("doctor", "bad", pool_dir=pool_dir)
    assert r.returncode == 7 and r.stdout.startswith("CORRUPT")
    r = pls("doctor", "--all", "--json", pool_dir=pool_dir)
    assert r.returncode == 7
    reports = {rep["pool"]: rep for rep in json.loads(r.stdout)["reports"]}
    assert reports["good"]["ok"] is True and reports["bad"]["ok"] is False and reports["bad"]["issues"]
    # upstream's report fields, beside ours
    good, bad = reports["good"], reports["bad"]
    assert good["pool_ref"] == "good" and good["status"] == "ok" and good["last_good_seq"] == 1
    assert good["issue_count"] == 0 and good["issues"] == [] and good["remediation_hints"] == []
    assert good["snapshot_path"] is None and good["path"] == str(pool_dir / "good.plasmite")
    assert bad["status"] == "corrupt" and bad["issue_count"] == len(bad["issues"]) >= 1
    assert bad["last_good_seq"] is None  # its only message is the damaged one
    assert all(set(i) == {"code", "message", "seq", "offset"} for i in bad["issues"])
    assert any("--repair" in h for h in bad["remediation_hints"])
    (pool_dir / "junk.plasmite").write_bytes(b"NOPE")
    junk = json.loads(pls("doctor", "junk", "--json", pool_dir=pool_dir).stdout)["reports"][0]
    assert junk["status"] == "corrupt" and junk["issues"][0]["code"] == "header"
    assert junk["remediation_hints"] and not any("--repair" in h for h in junk["remediation_hints"])
    # Reading the damaged message is a Corrupt error, exit 7.
    r = pls("fetch", "bad", "1", pool_dir=pool_dir)
    assert r.returncode == 7 and error_of(r)["kind"] == "Corrupt"


def test_doctor_usage(pool_dir):
    assert pls("doctor", pool_dir=pool_dir).returncode == 2
    assert pls("doctor", "x", "--all", pool_dir=pool_dir).returncode == 2
    r = pls("doctor", "missing", pool_dir=pool_dir)
    assert r.returncode == 3 and error_of(r)["kind"] == "NotFound"


# ------------------------------------------------------ errors and exits

def test_not_a_pool_file_is_corrupt(pool_dir):
    (pool_dir / "junk.plasmite").write_bytes(b"this is not a pool" * 100)
    r = pls("feed", "junk", "{}", pool_dir=pool_dir)
    assert r.returncode == 7
    err = error_of(r)
    assert err["kind"] == "Corrupt" and err["message"]
    listed = json.loads(pls("pool", "list", "--json", pool_dir=pool_dir).stdout)["pools"]
    assert listed[0]["name"] == "junk" and listed[0]["error"]["error"]["kind"] == "Corrupt"


def test_argument_errors_are_usage_envelopes_without_traceback(pool_dir):
    for args in (["nosuch"], ["feed"], ["feed", "x", "--bogus"], ["fetch", "x", "-1"],
                 ["follow", "x", "--tail", "many"], ["pool", "create"], ["follow", "x", "--replay", "fast"]):
        r = pls(*args, pool_dir=pool_dir)
        assert r.returncode == 2, (args, r.stderr)
        err = error_of(r)
        assert err["kind"] == "Usage" and err["message"] and err["hint"], args
    r = pls("fed", "x", pool_dir=pool_dir)
    assert "did you mean `pls feed`" in error_of(r)["hint"]


def test_no_arguments_prints_help_and_exits_2(pool_dir):
    r = pls(pool_dir=pool_dir)
    assert r.returncode == 2 and "Usage: pls" in r.stderr and "Commands:" in r.stderr


def test_broken_pipe_is_quiet(pool_dir):
    pls("pool", "create", "--size", "8M", "bp", pool_dir=pool_dir)
    lines = "".join(json.dumps({"i": i}) + "\n" for i in range(20000))
    pls("feed", "bp", pool_dir=pool_dir, input=lines)
    r = subprocess.run(
        f"{' '.join(shlex.quote(a) for a in PLS)} follow bp --tail 20000 --jsonl | head -n 1",
        shell=True, capture_output=True, text=True, env=env_for(pool_dir), timeout=60,
    )
    assert json.loads(r.stdout)["seq"] == 1
    assert "Traceback" not in r.stderr and "Exception" not in r.stderr


# ------------------------------------------------------- --help accuracy

def _commands():
    from plasmite_cli.app import cli

    out = {}
    for name in cli.list_commands(None):
        cmd = cli.get_command(None, name)
        if getattr(cmd, "_plasmite_builtin", None) is None:
            continue  # other distributions' commands have their own tests
        if hasattr(cmd, "commands"):
            for sub in cmd.list_commands(None):
                out[f"{name} {sub}"] = cmd.get_command(None, sub)
        out[name] = cmd
    return out


def _flags(cmd) -> set[str]:
    flags = set()
    for p in cmd.params:
        flags.update(o for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", []) if o.startswith("-"))
    flags.update({"--help", "-h"})
    return flags


TOP_LEVEL = {"--dir", "--color", "--version", "--help"}


def test_help_of_every_command_is_accurate(pool_dir):
    """Each help page renders; every flag its prose mentions exists; every
    `pls ...` example in it parses with the real parser."""
    from plasmite_cli.app import cli

    commands = _commands()
    assert {"pool create", "pool info", "pool list", "pool delete", "feed", "fetch", "follow", "duplex", "tap",
            "doctor", "version", "completion", "plugins", "help"} <= set(commands)
    top = pls("--help", pool_dir=pool_dir).stdout
    for name in ("feed", "follow", "fetch", "pool", "duplex", "tap", "doctor", "version", "completion"):
        assert re.search(rf"^\s+{name}\s+\S", top, re.M), name
    for name, cmd in commands.items():
        r = pls(*name.split(), "--help", pool_dir=pool_dir)
        assert r.returncode == 0, (name, r.stderr)
        text = r.stdout
        assert text.startswith(f"Usage: pls {name}"), text[:80]
        own = _flags(cmd)
        for opt in own - {"-h"}:
            if opt.startswith("--"):
                assert opt in text, (name, opt)
        in_options = False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped in ("Options:", "Commands:"):
                in_options = True  # generated from the code itself
                continue
            if in_options:
                in_options = bool(stripped)
                continue
            if stripped.startswith("pls ") or " | pls " in stripped:
                segment = stripped[stripped.index("pls "):]
                segment = segment.split(" | ")[0].split("  #")[0].split(" > ")[0].strip()
                if "$(" in segment or "<(" in segment:
                    continue
                argv = shlex.split(segment)[1:]
                _parses(cli, argv, name, line)
            else:
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
                    assert flag in own or flag in TOP_LEVEL, (name, flag, line)


def _parses(cli, argv, where, line):
    """Parse an example with click (no callback runs)."""
    import warnings

    import click

    warnings.simplefilter("ignore", DeprecationWarning)  # click's protected_args
    ctx = cli.make_context("pls", list(argv), resilient_parsing=False)
    cmd_name, cmd, rest = cli.resolve_command(ctx, ctx.protected_args + ctx.args)
    try:
        sub = cmd.make_context(cmd_name, rest, parent=ctx)
        if isinstance(cmd, click.Group):
            sub_name, sub_cmd, sub_rest = cmd.resolve_command(sub, sub.protected_args + sub.args)
            sub_cmd.make_context(sub_name, sub_rest, parent=sub)
    except click.UsageError as exc:  # pragma: no cover - the assertion message is the point
        raise AssertionError(f"help example of `{where}` does not parse: {line.strip()!r}: {exc}")


def test_busy_pool_delete_exits_5(pool_dir):
    import fcntl

    pls("pool", "create", "held", pool_dir=pool_dir)
    fd = os.open(pool_dir / "held.plasmite", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in the middle of an append would
        r = pls("pool", "delete", "held", "--json", pool_dir=pool_dir)
    finally:
        os.close(fd)
    assert r.returncode == 5
    assert json.loads(r.stdout)["failed"][0]["error"]["kind"] == "Busy"
    assert pls("pool", "delete", "held", pool_dir=pool_dir).returncode == 0


def test_unexpected_exception_is_internal_without_traceback(pool_dir, tmp_path):
    site = tmp_path / "site"
    write_plugin(site, "crashy_plasmite", """
        import click, pluggy
        hookimpl = pluggy.HookimplMarker("plasmite")

        @click.command()
        def crash():
            raise ValueError("something odd")

        @hookimpl
        def register_commands(cli):
            cli.add_command(crash)
    """)
    env = env_for(pool_dir, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
                  PLASMITE_LOAD_PLUGINS="crashy_plasmite")  # tox loads only this project's plugins otherwise
    r = pls("crash", pool_dir=pool_dir, env=env)
    assert r.returncode == 1
    err = error_of(r)
    assert err["kind"] == "Internal" and "something odd" in err["message"] and "bug" in err["hint"]


def test_readme_local_ipc(pool_dir):
    # README: Alice creates a channel and sends; Bob, already following, sees it.
    assert pls("pool", "create", "channel", pool_dir=pool_dir).returncode == 0
    bob = subprocess.Popen([*PLS, "follow", "channel", "--one"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env_for(pool_dir))
    try:
        started_following(bob, pool_dir / "channel.plasmite")
        r = pls("feed", "channel", '{"from": "A", "msg": "hello world"}', pool_dir=pool_dir)
        assert r.returncode == 0
        out, err = bob.communicate(timeout=20)
    finally:
        if bob.poll() is None:
            bob.kill()
    assert bob.returncode == 0, err
    assert json.loads(out)["data"] == {"from": "A", "msg": "hello world"}


def test_help_command_matches_dash_dash_help(pool_dir):
    for args in (["follow"], ["pool", "create"], []):
        via_help = pls("help", *args, pool_dir=pool_dir)
        via_flag = pls(*args, "--help", pool_dir=pool_dir)
        assert via_help.returncode == 0 and via_help.stdout == via_flag.stdout
    r = pls("help", "nope", pool_dir=pool_dir)
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage"


def test_builtin_with_options_resolves_statically(pool_dir):
    # Through click, still without scanning entry points or loading other commands.
    pls("pool", "create", "fast", pool_dir=pool_dir)
    code = textwrap.dedent("""
        import sys
        from plasmite_cli.app import run
        rc = run(["feed", "fast", "--tag", "t", '{"x": 1}'])
        loaded = sorted(m for m in sys.modules if m.startswith(("plasmite_jq", "plasmite_serve",
                        "plasmite_cli.builtin", "plasmite_cli.commands.follow", "importlib.metadata")))
        print(rc, loaded, "click" in sys.modules, file=sys.stderr)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for(pool_dir),
                       timeout=60)
    assert r.stderr.strip() == "0 [] True", r.stderr


@pytest.mark.parametrize("extra", [[], ["--durability", "fast"]])
def test_one_shot_fast_path_and_click_path_agree(pool_dir, extra):
    # `pls feed POOL DATA` skips click; with any option it goes through click.
    r = pls("feed", "missing", '{"a":1}', *extra, pool_dir=pool_dir)
    assert r.returncode == 3
    err = error_of(r)
    assert err["kind"] == "NotFound" and "pool create missing" in err["hint"]
    r = pls("feed", "missing", "{bad", *extra, pool_dir=pool_dir)
    assert r.returncode == 3  # the pool is opened before DATA is parsed, on both paths
    pls("pool", "create", "here", pool_dir=pool_dir)
    r = pls("feed", "here", "{bad", *extra, pool_dir=pool_dir)
    assert r.returncode == 2 and "invalid JSON" in error_of(r)["message"]
    r = pls("feed", "here", '{"ok":true}', *extra, pool_dir=pool_dir)
    assert r.returncode == 0 and set(json.loads(r.stdout)) == {"seq", "time", "meta"}


def test_broken_pipe_exits_141_for_history_and_live_follow(pool_dir):
    pls("pool", "create", "--size", "8M", "bp2", pool_dir=pool_dir)
    pls("feed", "bp2", pool_dir=pool_dir, input="".join(json.dumps({"i": i}) + "\n" for i in range(20000)))
    cmd = " ".join(shlex.quote(a) for a in [*PLS, "follow", "bp2", "--tail", "20000", "--jsonl"])
    r = subprocess.run(["bash", "-c", f"{cmd} | head -c 1 > /dev/null; echo ${{PIPESTATUS[0]}}"],
                       capture_output=True, text=True, env=env_for(pool_dir), timeout=60)
    assert r.stdout.strip() == "141" and "Traceback" not in r.stderr, r.stderr
    # live: the reader goes away, then new messages arrive
    p = subprocess.Popen([*PLS, "follow", "bp2", "--jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env_for(pool_dir))
    started_following(p, pool_dir / "bp2.plasmite")
    p.stdout.close()
    for i in range(3):
        pls("feed", "bp2", json.dumps({"after": i}), pool_dir=pool_dir)
    assert p.wait(timeout=30) == 141
    assert "Traceback" not in p.stderr.read().decode()


def test_doctor_repair_keeps_intact_messages(pool_dir):
    pls("pool", "create", "fix", pool_dir=pool_dir)
    pls("feed", "fix", pool_dir=pool_dir,
        input="".join(json.dumps({"i": i, "pad": f"{i:04d}" * 8}) + "\n" for i in range(5)))
    info = json.loads(pls("pool", "info", "fix", "--json", pool_dir=pool_dir).stdout)
    path = pool_dir / "fix.plasmite"
    raw = bytearray(path.read_bytes())
    at = raw.find(b"0003" * 8, info["ring_offset"])  # the 4th message's payload
    raw[at : at + 4] = b"XXXX"
    path.write_bytes(bytes(raw))
    r = pls("doctor", "fix", pool_dir=pool_dir)
    assert r.returncode == 7 and "doctor --repair" in r.stdout
    r = pls("doctor", "fix", "--repair", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stdout
    rep = json.loads(r.stdout)["reports"][0]
    assert rep["repaired"] is True and rep["ok"] is True and rep["issues"] and rep["lost"] == [[4, 4]]
    assert pls("doctor", "fix", pool_dir=pool_dir).returncode == 0
    msgs = [json.loads(x) for x in pls("follow", "fix", "--tail", "10", "--jsonl", "--timeout", "200ms",
                                       pool_dir=pool_dir).stdout.splitlines()]
    assert [m["data"]["i"] for m in msgs] == [0, 1, 2, 4]  # every intact message, past the damaged one
    # seqs are not reused: the next append continues after the newest ever published
    assert json.loads(pls("feed", "fix", '{"after": true}', pool_dir=pool_dir).stdout)["seq"] == 6
    # a healthy pool is left alone
    r = pls("doctor", "fix", "--repair", pool_dir=pool_dir)
    assert r.returncode == 0 and r.stdout.startswith("OK")
