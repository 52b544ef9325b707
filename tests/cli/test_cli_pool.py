"""``pls pool create|info|list|delete``, --dir / PLASMITE_DIR and pool-ref resolution."""

from __future__ import annotations

import json

import pytest

from cli_support import PtyProcess, env_for, error_of, pls


def test_create_info_list_delete_json(pool_dir):
    r = pls("pool", "create", "--size", "64K", "alpha", "beta", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)["created"]
    assert [c["name"] for c in created] == ["alpha", "beta"]
    assert created[0]["file_size"] == 64 * 1024
    assert (pool_dir / "alpha.plasmite").exists() and (pool_dir / "beta.plasmite").exists()

    assert pls("feed", "alpha", '{"n":1}', pool_dir=pool_dir).returncode == 0
    info = json.loads(pls("pool", "info", "alpha", "--json", pool_dir=pool_dir).stdout)
    assert info["name"] == "alpha"
    assert info["bounds"] == {"oldest": 1, "newest": 1}
    assert info["metrics"]["message_count"] == 1
    assert info["path"].endswith("alpha.plasmite")

    listed = json.loads(pls("pool", "list", "--json", pool_dir=pool_dir).stdout)["pools"]
    assert [p["name"] for p in listed] == ["alpha", "beta"]
    assert listed[0]["metrics"]["message_count"] == 1

    r = pls("pool", "delete", "alpha", "beta", "--json", pool_dir=pool_dir)
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert [d["pool"] for d in out["deleted"]] == ["alpha", "beta"] and out["failed"] == []
    assert not (pool_dir / "alpha.plasmite").exists()


def test_human_output_is_text(pool_dir):
    assert pls("pool", "create", "chat", pool_dir=pool_dir).returncode == 0
    r = pls("pool", "list", pool_dir=pool_dir)
    assert r.stdout.splitlines()[0].split() == ["NAME", "STATUS", "SIZE", "MESSAGES", "USED", "LAST", "WRITE",
                                                "DETAIL"]
    assert r.stdout.splitlines()[1].split()[:2] == ["chat", "OK"]
    r = pls("pool", "info", "chat", pool_dir=pool_dir)
    assert "Pool:     chat" in r.stdout and "Messages: 0 (seq empty)" in r.stdout


def test_create_existing_is_already_exists(pool_dir):
    assert pls("pool", "create", "dup", pool_dir=pool_dir).returncode == 0
    r = pls("pool", "create", "dup", pool_dir=pool_dir)
    assert r.returncode == 4
    err = error_of(r)
    assert err["kind"] == "AlreadyExists" and "dup" in err["message"] and err["hint"]


def test_delete_partial_failure_is_nonzero_and_reports_each(pool_dir):
    pls("pool", "create", "keep", pool_dir=pool_dir)
    r = pls("pool", "delete", "keep", "missing", "--json", pool_dir=pool_dir)
    assert r.returncode == 3  # NotFound, the first failure's kind
    out = json.loads(r.stdout)
    assert [d["pool"] for d in out["deleted"]] == ["keep"]
    assert out["failed"][0]["pool"] == "missing"
    assert out["failed"][0]["error"]["kind"] == "NotFound"


def test_info_missing_pool_not_found(pool_dir):
    r = pls("pool", "info", "nope", pool_dir=pool_dir)
    assert r.returncode == 3
    err = error_of(r)
    assert err["kind"] == "NotFound" and "pool list" in err["hint"]


def test_bad_size_is_usage_error(pool_dir):
    r = pls("pool", "create", "--size", "12Q", "x", pool_dir=pool_dir)
    assert r.returncode == 2
    err = error_of(r)
    assert err["kind"] == "Usage" and "K/M/G" in err["hint"]


def test_dir_option_env_and_ref_resolution(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    # --dir (before the command) wins over PLASMITE_DIR.
    r = pls("--dir", str(a), "pool", "create", "one", pool_dir=b)
    assert r.returncode == 0, r.stderr
    assert (a / "one.plasmite").exists() and not (b / "one.plasmite").exists()
    # PLASMITE_DIR alone.
    assert pls("pool", "create", "two", pool_dir=b).returncode == 0
    assert (b / "two.plasmite").exists()
    # NAME.plasmite resolves inside the dir; a ref with "/" is a path.
    assert pls("feed", "two.plasmite", '{"k":1}', pool_dir=b).returncode == 0
    path_ref = str(tmp_path / "elsewhere" / "three.plasmite")
    assert pls("pool", "create", path_ref, pool_dir=b).returncode == 0
    assert (tmp_path / "elsewhere" / "three.plasmite").exists()
    assert pls("feed", path_ref, '{"k":3}', pool_dir=b).returncode == 0
    r = pls("fetch", "two", "1", pool_dir=b)
    assert json.loads(r.stdout)["data"] == {"k": 1}
    # Default dir: ~/.plasmite/pools under HOME.
    home = tmp_path / "home"
    env = env_for(None, HOME=str(home))
    assert pls("pool", "create", "homed", pool_dir=None, env=env).returncode == 0
    assert (home / ".plasmite" / "pools" / "homed.plasmite").exists()


def test_pool_delete_on_a_terminal(pool_dir):
    pls("pool", "create", "gone", pool_dir=pool_dir)
    p = PtyProcess("pool", "delete", "gone", pool_dir=pool_dir)
    try:
        assert p.finish() == 0
        assert "deleted gone" in p.text()
    finally:
        p.close()


def test_remote_ref_rejected_for_pool_management(pool_dir):
    r = pls("pool", "info", "http://127.0.0.1:9/x", pool_dir=pool_dir)
    assert r.returncode == 2
    assert error_of(r)["kind"] == "Usage"


def test_list_carries_upstream_fields_and_error_entries(pool_dir):
    import datetime

    pls("pool", "create", "beta", "alpha", pool_dir=pool_dir)
    pls("feed", "alpha", '{"n":1}', pool_dir=pool_dir)
    (pool_dir / "bad.plasmite").write_bytes(b"NOPE")
    r = pls("pool", "list", "--json", pool_dir=pool_dir)
    assert r.returncode == 0
    pools = json.loads(r.stdout)["pools"]
    assert [p["name"] for p in pools] == ["alpha", "bad", "beta"]
    alpha, bad, beta = pools
    for p in (alpha, beta):
        assert {"name", "path", "file_size", "bounds", "mtime"} <= set(p) and "metrics" in p  # ours too
        when = datetime.datetime.fromisoformat(p["mtime"].replace("Z", "+00:00")[:26] + "+00:00")
        assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 3600
    assert alpha["bounds"] == {"oldest": 1, "newest": 1} and beta["bounds"] == {}
    assert alpha["path"] == str((pool_dir / "alpha.plasmite").resolve())
    # upstream's entry for an unreadable pool: name, path and the error envelope
    assert set(bad) == {"name", "path", "error"} and bad["error"]["error"]["kind"] == "Corrupt"
    assert bad["error"]["error"]["message"]
    table = pls("pool", "list", pool_dir=pool_dir).stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "STATUS"] and "DETAIL" in table[0]
    assert [line.split()[:2] for line in table[1:]] == [["alpha", "OK"], ["bad", "ERR"], ["beta", "OK"]]
    assert "too short" in table[2]


def test_create_refuses_an_index_that_leaves_too_little_ring(pool_dir):
    r = pls("pool", "create", "--size", "64K", "--index-capacity", "5000", "too-big", pool_dir=pool_dir)
    err = error_of(r)
    assert r.returncode == 2 and err["kind"] == "Usage" and "index capacity" in err["message"] and err["hint"]
    assert not (pool_dir / "too-big.plasmite").exists() and list(pool_dir.iterdir()) == []
    most = int(err["message"].rsplit("at most ", 1)[1].split()[0])
    r = pls("pool", "create", "--size", "64K", "--index-capacity", str(most), "fits", "--json", pool_dir=pool_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["created"][0]["index_capacity"] == most
    r = pls("pool", "create", "--size", "64K", "--index-capacity", str(most + 1), "over", pool_dir=pool_dir)
    assert r.returncode == 2


@pytest.mark.parametrize("codec", ["json", "msgpack", "lite3"])
def test_create_with_codec(pool_dir, codec):
    r = pls("pool", "create", "--codec", codec, "c", "--json", pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["created"][0]["codec"] == codec
    assert pls("feed", "c", '{"n":[1,2]}', pool_dir=pool_dir).returncode == 0
    assert json.loads(pls("fetch", "c", "1", pool_dir=pool_dir).stdout)["data"] == {"n": [1, 2]}
    info = json.loads(pls("pool", "info", "c", "--json", pool_dir=pool_dir).stdout)
    assert info["codec"] == codec


def test_create_with_unknown_codec_is_usage_and_creates_nothing(pool_dir):
    r = pls("pool", "create", "--codec", "nope", "c", pool_dir=pool_dir)
    err = error_of(r)
    assert r.returncode == 2 and "nope" in err["message"] and "msgpack" in err["hint"]
    assert list(pool_dir.iterdir()) == []
