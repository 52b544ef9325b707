"""Upstream Plasmite pool files (magic PLSM, format 3): recognised with a
Usage error that says what they are, and converted by ``pls pool import``
keeping seqs, times, tags and data.

The files are written by ``upstream_pool_fixture`` from upstream's engine
source (see its docstring for why it is faithful)."""

from __future__ import annotations

import json

import pytest

from cli_support import error_of, jsonl, pls
from upstream_pool_fixture import write_upstream_pool

pytest.importorskip("plasmite_codecs")  # payloads are Lite3

T0 = 1_700_000_000_123_456_789


def messages(n: int) -> list:
    return [(T0 + i * 1_000_003, ["odd"] if i % 2 else [], {"i": i, "pad": "x" * (i * 37 % 300), "z": {"b": [i], "a": None}})
            for i in range(n)]


@pytest.fixture
def wrapped(pool_dir):
    """An upstream pool whose ring has wrapped several times (64 KiB, 600 messages)."""
    msgs = messages(600)
    info = write_upstream_pool(pool_dir / "chat.plasmite", msgs)
    assert info["oldest_seq"] > 1 and info["tail_off"] > info["head_off"]  # wrapped, oldest dropped
    return msgs, info


def test_fixture_reads_back_through_the_upstream_reader(pool_dir, wrapped):
    from plasmite_core.upstream import HEADER_SIZE, iter_frames, read_header

    msgs, info = wrapped
    raw = (pool_dir / "chat.plasmite").read_bytes()
    h = read_header(raw[:HEADER_SIZE], "chat", len(raw))
    assert (h.version, h.oldest_seq, h.newest_seq) == (3, info["oldest_seq"], 600)
    seqs = [seq for seq, _, _ in iter_frames(raw, h, "chat")]
    assert seqs == info["retained"] == list(range(info["oldest_seq"], 601))


def test_opening_an_upstream_pool_is_a_usage_error_that_says_what_it_is(client, pool_dir, wrapped):
    from plasmite import UsageError

    with pytest.raises(UsageError) as err:
        client.open_pool("chat")
    assert "an upstream Plasmite pool (format 3)" in err.value.message and "pls pool import chat" in err.value.hint
    assert isinstance(err.value, ValueError)
    for args in (("feed", "chat", '{"a":1}'), ("follow", "chat", "--tail", "1"), ("fetch", "chat", "1"),
                 ("pool", "info", "chat"), ("doctor", "chat")):
        r = pls(*args, pool_dir=pool_dir)
        e = error_of(r)
        assert r.returncode == 2 and e["kind"] == "Usage", (args, r.stderr)
        assert "upstream Plasmite pool (format 3)" in e["message"] and "pls pool import" in e["hint"]
    listed = json.loads(pls("pool", "list", "--json", pool_dir=pool_dir).stdout)["pools"][0]
    assert listed["error"]["error"]["kind"] == "Usage"
    assert "ERR" in pls("pool", "list", pool_dir=pool_dir).stdout
    report = json.loads(pls("doctor", "--all", "--json", pool_dir=pool_dir).stdout)["reports"][0]
    assert report["issues"][0]["code"] == "upstream_format"
    assert any("pool import" in h for h in report["remediation_hints"])


def test_import_in_place_keeps_seqs_times_tags_and_data(client, pool_dir, wrapped):
    msgs, info = wrapped
    original = (pool_dir / "chat.plasmite").read_bytes()
    r = pls("pool", "import", "chat", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["imported"]
    kept = info["retained"]
    assert (out["messages"], out["first_seq"], out["last_seq"], out["dropped_oldest"]) == (len(kept), kept[0], 600, 0)
    backup = pool_dir / "chat.plasmite.upstream-v3.bak"
    assert out["backup"] == str(backup) and backup.read_bytes() == original

    pool = client.open_pool("chat")
    got = list(pool.tail(since_seq=1, timeout_ms=0))
    assert [m.seq for m in got] == kept
    for m in got:
        t, tags, data = msgs[m.seq - 1]
        assert (m.time_ns, m.tags, m.data) == (t, tags, data)
    assert pool.get(kept[0]).seq == kept[0]  # indexed
    # new appends continue upstream's numbering; the pool is healthy
    assert pool.append({"after": True}).seq == 601
    pool.close()
    assert pls("doctor", "chat", pool_dir=pool_dir).returncode == 0
    # the text form of the report
    r = pls("pool", "import", str(backup), "again", pool_dir=pool_dir)
    assert r.returncode == 0 and f"{len(kept)} messages (seq {kept[0]}..600)" in r.stdout


def test_import_to_a_smaller_pool_keeps_the_newest(client, pool_dir):
    msgs = messages(300)
    info = write_upstream_pool(pool_dir / "src.plasmite", msgs, file_size=256 * 1024, index_capacity=512)
    r = pls("pool", "import", "src", "small", "--size", "64K", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["imported"]
    assert out["dropped_oldest"] > 0 and out["last_seq"] == 300 and out["backup"] is None
    assert out["first_seq"] == info["oldest_seq"] + out["dropped_oldest"]
    small = client.open_pool("small")
    assert [m.data["i"] for m in small.tail(since_seq=1, timeout_ms=0)] == list(range(out["first_seq"] - 1, 300))
    assert small.info().file_size == 64 * 1024
    small.close()
    assert (pool_dir / "src.plasmite").read_bytes()[:4] == b"PLSM"  # the source is left alone


def test_import_refusals_change_nothing(pool_dir):
    write_upstream_pool(pool_dir / "up.plasmite", messages(5))
    before = (pool_dir / "up.plasmite").read_bytes()
    pls("pool", "create", "taken", pool_dir=pool_dir)
    r = pls("pool", "import", "up", "taken", pool_dir=pool_dir)
    assert r.returncode == 4 and error_of(r)["kind"] == "AlreadyExists"
    r = pls("pool", "import", "taken", pool_dir=pool_dir)  # one of ours
    assert r.returncode == 2 and "not an upstream Plasmite pool" in error_of(r)["message"]
    r = pls("pool", "import", "ghost", pool_dir=pool_dir)
    assert r.returncode == 3 and error_of(r)["kind"] == "NotFound"
    assert (pool_dir / "up.plasmite").read_bytes() == before
    assert sorted(p.name for p in pool_dir.iterdir() if p.name != ".plasmite.lock") == ["taken.plasmite", "up.plasmite"]


def test_empty_and_other_versions(client, pool_dir):
    write_upstream_pool(pool_dir / "empty.plasmite", [])
    r = pls("pool", "import", "empty", "--json", pool_dir=pool_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["imported"]["messages"] == 0
    assert client.open_pool("empty").append({"first": 1}).seq == 1
    write_upstream_pool(pool_dir / "old.plasmite", messages(2), version=2)
    r = pls("feed", "old", "{}", pool_dir=pool_dir)
    assert r.returncode == 2 and "(format 2)" in error_of(r)["message"]
    r = pls("pool", "import", "old", pool_dir=pool_dir)
    assert r.returncode == 2 and "format 2" in error_of(r)["message"]
    assert jsonl(pls("pool", "list", "--json", pool_dir=pool_dir).stdout)


def test_a_damaged_upstream_frame_is_corrupt_and_nothing_is_written(pool_dir):
    write_upstream_pool(pool_dir / "dmg.plasmite", messages(10))
    path = pool_dir / "dmg.plasmite"
    raw = bytearray(path.read_bytes())
    at = raw.rfind(b"PLSMCMIT")  # the newest frame's commit marker
    raw[at : at + 8] = b"\0" * 8
    path.write_bytes(bytes(raw))
    r = pls("pool", "import", "dmg", pool_dir=pool_dir)
    err = error_of(r)
    assert r.returncode == 7 and err["kind"] == "Corrupt" and err["seq"] == 10
    assert path.read_bytes() == bytes(raw) and sorted(p.name for p in pool_dir.iterdir()) == ["dmg.plasmite"]
