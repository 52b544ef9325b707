"""``pls feed`` (inline, --file, stdin streams, receipts, errors) and ``pls fetch``."""

from __future__ import annotations

import json

import pytest

from cli_support import PtyProcess, error_of, jsonl, pls


@pytest.fixture
def chat(pool_dir):
    assert pls("pool", "create", "chat", pool_dir=pool_dir).returncode == 0
    return "chat"


def all_messages(pool_dir, pool="chat"):
    r = pls("follow", pool, "--tail", "100000", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir)
    assert r.returncode == 124, r.stderr
    return jsonl(r.stdout)


def test_inline_receipt_is_json_when_piped(pool_dir, chat):
    r = pls("feed", chat, "--tag", "ping", "--tag", "from-alice", '{"msg":"hello"}', pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    receipt = json.loads(r.stdout)
    assert set(receipt) == {"seq", "time", "meta"}  # no data echoed
    assert receipt["seq"] == 1
    assert receipt["meta"] == {"tags": ["ping", "from-alice"]}
    assert receipt["time"].endswith("Z") and len(receipt["time"].split(".")[1]) == 10
    fetched = json.loads(pls("fetch", chat, "1", pool_dir=pool_dir).stdout)
    assert fetched == {**receipt, "data": {"msg": "hello"}}


def test_receipt_is_text_on_a_terminal(pool_dir, chat):
    p = PtyProcess("feed", chat, "--tag", "t1", '{"a":1}', pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        out = p.text()
        assert out.startswith("fed seq=1 at ") and "tags: t1" in out
        assert "{" not in out
    finally:
        p.close()


def test_alias_poke_and_get(pool_dir, chat):
    assert pls("poke", chat, '{"via":"poke"}', pool_dir=pool_dir).returncode == 0
    assert json.loads(pls("get", chat, "1", pool_dir=pool_dir).stdout)["data"] == {"via": "poke"}


def test_stdin_jsonl_stream_one_message_per_line(pool_dir, chat):
    lines = "".join(json.dumps({"i": i}) + "\n" for i in range(1000)) + "\n\n"
    r = pls("feed", chat, "--tag", "bulk", pool_dir=pool_dir, input=lines)
    assert r.returncode == 0, r.stderr
    receipts = jsonl(r.stdout)
    assert [x["seq"] for x in receipts] == list(range(1, 1001))
    msgs = all_messages(pool_dir)
    assert [m["data"]["i"] for m in msgs] == list(range(1000))
    assert all(m["meta"]["tags"] == ["bulk"] for m in msgs)


def test_auto_accepts_pretty_and_concatenated_json(pool_dir, chat):
    text = json.dumps({"a": 1, "b": [1, 2]}, indent=2) + "\n" + '{"c":3}{"d":4}\n' + json.dumps({"e": 5}, indent=1)
    r = pls("feed", chat, pool_dir=pool_dir, input=text)
    assert r.returncode == 0, r.stderr
    assert [m["data"] for m in all_messages(pool_dir)] == [{"a": 1, "b": [1, 2]}, {"c": 3}, {"d": 4}, {"e": 5}]


def test_auto_handles_values_that_start_mid_line(pool_dir, chat):
    # a value ends on a later line and the next one starts right after it
    text = '{"a":\n 3}{"a":4}\n{"b":\n [1,\n 2]} {"c":\n5}\n{"d":6}'
    r = pls("feed", chat, pool_dir=pool_dir, input=text)
    assert r.returncode == 0, r.stderr
    assert [m["data"] for m in all_messages(pool_dir)] == [{"a": 3}, {"a": 4}, {"b": [1, 2]}, {"c": 5}, {"d": 6}]


def test_in_jq_stream_of_values_in_any_layout(pool_dir, chat):
    text = '{"x": 1}\n\n{\n "y": 2\n} {"z":\n3}{"w":4}'
    r = pls("feed", chat, "--in", "jq", pool_dir=pool_dir, input=text)
    assert r.returncode == 0, r.stderr
    assert [m["data"] for m in all_messages(pool_dir)] == [{"x": 1}, {"y": 2}, {"z": 3}, {"w": 4}]
    r = pls("feed", chat, "--in", "jq", "--errors", "skip", pool_dir=pool_dir, input='{"v":1}\n')
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage" and "--in jq" in error_of(r)["message"]
    assert len(all_messages(pool_dir)) == 4


def test_in_json_takes_exactly_one_value(pool_dir, chat):
    r = pls("feed", chat, "--in", "json", pool_dir=pool_dir, input='{\n  "x": 1,\n  "y": 2\n}\n')
    assert r.returncode == 0 and len(jsonl(r.stdout)) == 1, r.stderr
    r = pls("feed", chat, "--in", "json", pool_dir=pool_dir, input='{"x": 1}\n{"x": 2}\n')
    err = error_of(r)
    assert r.returncode == 2 and err["kind"] == "Usage" and "exactly one" in err["message"] and "--in jq" in err["hint"]
    assert r.stdout == "" and len(all_messages(pool_dir)) == 1  # nothing of the two was stored


def test_in_json_errors_skip_reports_a_truncated_document(pool_dir, chat):
    r = pls("feed", chat, "--in", "json", "--errors", "skip", pool_dir=pool_dir, input='{"x":1')
    assert r.returncode == 1 and r.stdout == ""
    notices = [json.loads(line)["notice"] for line in r.stderr.splitlines() if line.strip()]
    assert [n["kind"] for n in notices] == ["ingest_skip", "ingest_summary"]
    assert notices[0]["details"]["mode"] == "json" and notices[0]["details"]["error_kind"] == "Parse"
    assert all_messages(pool_dir) == []


@pytest.mark.parametrize("data, kind", [("[1,2,3]", "an array"), ("42", "a number"), ('"text"', "a string"),
                                        ("null", "null")])
def test_message_data_must_be_an_object(pool_dir, chat, data, kind):
    r = pls("feed", chat, data, pool_dir=pool_dir)
    err = error_of(r)
    assert r.returncode == 2 and err["kind"] == "Usage" and f"must be a JSON object, got {kind}" in err["message"]
    assert err["hint"]
    # in a stream: the records before it are stored, then it stops, whatever --errors says
    for errors in ("stop", "skip"):
        r = pls("feed", chat, "--errors", errors, pool_dir=pool_dir, input='{"ok":1}\n' + data + '\n{"ok":2}\n')
        assert r.returncode == 2 and "record 2" in error_of(r)["message"], r.stderr
    assert [m["data"] for m in all_messages(pool_dir)] == [{"ok": 1}, {"ok": 1}]


def test_json_seq_as_journald_emits_it(pool_dir, chat):
    recs = [{"MESSAGE": "boot", "PRIORITY": "6"}, {"MESSAGE": "kernel panic", "PRIORITY": "2"}]
    text = "".join("\x1e" + json.dumps(r) + "\n" for r in recs)
    for mode in ("auto", "json-seq", "seq"):
        r = pls("feed", chat, "--in", mode, pool_dir=pool_dir, input=text)
        assert r.returncode == 0, (mode, r.stderr)
    assert [m["data"] for m in all_messages(pool_dir)] == recs * 3


def test_event_stream_data_lines(pool_dir, chat):
    text = ': keepalive\nevent: update\ndata: {"type":"a"}\n\nid: 2\ndata: {"type":\ndata: "b"}\n\n'
    r = pls("feed", chat, pool_dir=pool_dir, input=text)
    assert r.returncode == 0, r.stderr
    assert [m["data"] for m in all_messages(pool_dir)] == [{"type": "a"}, {"type": "b"}]


def test_jsonl_mode_rejects_pretty_json(pool_dir, chat):
    r = pls("feed", chat, "--in", "jsonl", pool_dir=pool_dir, input='{"ok":1}\n{\n"a":1}\n')
    assert r.returncode == 2
    err = error_of(r)
    assert err["kind"] == "Usage" and "line 2" in err["message"] and "--errors skip" in err["hint"]
    # The record before the bad one was stored.
    assert [m["data"] for m in all_messages(pool_dir)] == [{"ok": 1}]


def test_errors_skip_reports_each_and_exits_1(pool_dir, chat):
    text = '{"n":1}\nnot json\n{"n":2}\n{broken\n{"n":3}\n'
    r = pls("feed", chat, "--errors", "skip", pool_dir=pool_dir, input=text)
    assert r.returncode == 1
    notices = [json.loads(x)["notice"] for x in r.stderr.splitlines() if x.strip()]
    kinds = [n["kind"] for n in notices]
    assert kinds == ["ingest_skip", "ingest_skip", "ingest_summary"]
    assert notices[0]["details"]["line"] == 2 and notices[0]["cmd"] == "feed" and notices[0]["pool"] == chat
    assert notices[-1]["details"] == {**notices[-1]["details"], "total": 5, "ok": 3, "failed": 2}
    assert [m["data"] for m in all_messages(pool_dir)] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_file_and_file_dash(pool_dir, chat, tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_text('{"f":1}\n{"f":2}\n')
    assert pls("feed", chat, "--file", str(f), pool_dir=pool_dir).returncode == 0
    assert pls("feed", chat, "-f", "-", pool_dir=pool_dir, input='{"f":3}').returncode == 0
    assert [m["data"] for m in all_messages(pool_dir)] == [{"f": 1}, {"f": 2}, {"f": 3}]
    r = pls("feed", chat, "--file", str(tmp_path / "missing.jsonl"), pool_dir=pool_dir)
    assert r.returncode == 8 and error_of(r)["kind"] == "Io"  # a missing input file, as upstream


def test_create_and_create_size(pool_dir):
    r = pls("feed", "ci", '{"status":"green"}', pool_dir=pool_dir)
    assert r.returncode == 3
    err = error_of(r)
    assert err["kind"] == "NotFound" and "--create" in err["hint"] and "pool create ci" in err["hint"]
    r = pls("feed", "ci", "--create", "--create-size", "128K", '{"status":"green"}', pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    info = json.loads(pls("pool", "info", "ci", "--json", pool_dir=pool_dir).stdout)
    assert info["file_size"] == 128 * 1024


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--create-size", "1M", "{}"], "--create-size requires --create"),
        (["--retry-delay", "10ms", "{}"], "--retry-delay requires --retry"),
        (["{not json"], "invalid JSON"),
        (["--durability", "slow", "{}"], "slow"),
        (["--in", "xml", "{}"], "xml"),
        (["--retry", "2", "--retry-delay", "soon", "{}"], "--retry-delay"),
    ],
)
def test_usage_errors(pool_dir, chat, args, needle):
    r = pls("feed", chat, *args, pool_dir=pool_dir)
    assert r.returncode == 2
    err = error_of(r)
    assert err["kind"] == "Usage" and needle in err["message"]


def test_data_and_file_conflict(pool_dir, chat, tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    r = pls("feed", chat, "{}", "--file", str(f), pool_dir=pool_dir)
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage"


def test_empty_stdin_is_missing_data(pool_dir, chat):
    r = pls("feed", chat, pool_dir=pool_dir, input="\n \n")
    assert r.returncode == 2
    assert "missing data" in error_of(r)["message"]


def test_retry_and_durability_flush(pool_dir, chat):
    r = pls("feed", chat, "--retry", "3", "--retry-delay", "10ms", "--durability", "flush", '{"d":1}',
            pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(pls("fetch", chat, "1", pool_dir=pool_dir).stdout)["data"] == {"d": 1}


def test_unknown_scheme_needs_a_transport(pool_dir):
    r = pls("feed", "zmq://host:1/pool", "{}", pool_dir=pool_dir)
    assert r.returncode == 2
    err = error_of(r)
    assert "transport" in err["message"]


def test_remote_flags_rejected_for_local_refs(pool_dir, chat):
    r = pls("feed", chat, "--token", "x", "{}", pool_dir=pool_dir)
    assert r.returncode == 2 and "--token" in error_of(r)["message"]


def test_fetch_is_json_and_missing_seq_is_not_found(pool_dir, chat):
    pls("feed", chat, '{"v":1}', pool_dir=pool_dir)
    r = pls("fetch", chat, "1", pool_dir=pool_dir)
    msg = json.loads(r.stdout)
    assert list(msg) == ["seq", "time", "meta", "data"] and msg["meta"] == {"tags": []}
    r = pls("fetch", chat, "7", pool_dir=pool_dir)
    assert r.returncode == 3
    err = error_of(r)
    assert err["kind"] == "NotFound" and err["seq"] == 7 and "1..1" in err["hint"]
    r = pls("fetch", chat, "x", pool_dir=pool_dir)
    assert r.returncode == 2 and error_of(r)["kind"] == "Usage"


def test_fetch_pretty_on_terminal(pool_dir, chat):
    pls("feed", chat, '{"v":1}', pool_dir=pool_dir)
    p = PtyProcess("fetch", chat, "1", pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        out = p.text()
        assert '\n  "seq": 1,' in out
        assert json.loads(out)["data"] == {"v": 1}
    finally:
        p.close()


def test_missing_data_on_terminal_is_text_error(pool_dir, chat):
    p = PtyProcess("--color", "never", "feed", chat, pool_dir=pool_dir)
    try:
        assert p.finish() == 2
        out = p.text()
        assert out.startswith("error: missing data input") and "\nhint: " in out
        assert "Traceback" not in out and "{" not in out.splitlines()[0]
    finally:
        p.close()
    # Colour labels by default on a terminal.
    p = PtyProcess("feed", chat, pool_dir=pool_dir)
    try:
        assert p.finish() == 2
        assert p.text().startswith("\x1b[31merror:\x1b[0m missing data input")
    finally:
        p.close()


def test_oversized_records_are_rejected(pool_dir, chat):
    big = json.dumps({"big": "x" * (1 << 20)})
    r = pls("feed", chat, pool_dir=pool_dir, input=big + "\n")
    assert r.returncode == 2 and "1 MiB" in error_of(r)["message"]
    r = pls("feed", chat, "--errors", "skip", pool_dir=pool_dir, input=f'{{"n":1}}\n{big}\n{{"n":2}}\n')
    assert r.returncode == 1
    notices = [json.loads(x)["notice"] for x in r.stderr.splitlines() if x.strip()]
    assert notices[0]["details"]["error_kind"] == "Oversize" and notices[0]["details"]["line"] == 2
    assert [m["data"] for m in all_messages(pool_dir)] == [{"n": 1}, {"n": 2}]
    seq = "\x1e" + json.dumps({"n": 3}) + "\n" + "\x1e" + big + "\n" + "\x1e" + json.dumps({"n": 4}) + "\n"
    r = pls("feed", chat, "--errors", "skip", pool_dir=pool_dir, input=seq)
    assert r.returncode == 1
    assert [m["data"] for m in all_messages(pool_dir)][-2:] == [{"n": 3}, {"n": 4}]


def test_stream_receipts_and_stored_envelopes_match_fetch(pool_dir, chat):
    r = pls("feed", chat, "--tag", "x", pool_dir=pool_dir, input='{"b": 2,  "a": [1, 2.5e3]}\n{"c":null}\n')
    assert r.returncode == 0, r.stderr
    for receipt in jsonl(r.stdout):
        fetched = pls("fetch", chat, str(receipt["seq"]), pool_dir=pool_dir).stdout
        env = json.loads(fetched)
        assert {k: env[k] for k in ("seq", "time", "meta")} == receipt
    # stored compact: whitespace from the input is not kept
    assert pls("fetch", chat, "1", pool_dir=pool_dir).stdout.endswith(',"data":{"b":2,"a":[1,2500.0]}}\n')


def test_deeply_nested_input_is_a_usage_error(pool_dir, chat):
    deep = "[" * 100000 + "]" * 100000
    for args in ([], ["--in", "jsonl"], ["--in", "json"], ["--in", "json-seq"]):
        r = pls("feed", chat, *args, pool_dir=pool_dir, input=deep + "\n")
        assert r.returncode == 2, (args, r.stderr[-300:])
        assert error_of(r)["kind"] == "Usage"
    r = pls("feed", chat, "--errors", "skip", pool_dir=pool_dir, input=deep + '\n{"ok":1}\n')
    assert r.returncode == 1
    assert [m["data"] for m in all_messages(pool_dir)] == [{"ok": 1}]


def test_closed_stdout_still_stores_then_exits_141(pool_dir, chat):
    import shlex
    import subprocess

    from cli_support import PLS, env_for

    cmd = " ".join(shlex.quote(a) for a in [*PLS, "feed", chat, '{"closed": 1}'])
    r = subprocess.run(["sh", "-c", f"exec {cmd} >&-"], capture_output=True, text=True, env=env_for(pool_dir),
                       timeout=60)
    assert r.returncode == 141 and r.stderr == ""  # like a reader that went away
    assert [m["data"] for m in all_messages(pool_dir)] == [{"closed": 1}]
    cmd = " ".join(shlex.quote(a) for a in [*PLS, "follow", chat, "--tail", "1"])
    r = subprocess.run(["sh", "-c", f"exec {cmd} >&-"], capture_output=True, text=True, env=env_for(pool_dir),
                       timeout=60)
    assert r.returncode == 141 and "Traceback" not in r.stderr
