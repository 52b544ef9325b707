"""`pls feed/follow/fetch/duplex` on a third-party transport's URLs.

The transport is the toy ``dirpool://`` of tests/support/dirpool_transport.py, written
only against the contracts and loaded by name through PLASMITE_PLUGINS: the
CLI must drive it with no knowledge of it beyond what it declares.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cli_support import env_for, error_of, jsonl, pls, spawn

SUPPORT = Path(__file__).resolve().parents[1] / "support"


@pytest.fixture
def env(pool_dir, tmp_path):
    path = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p)
    return env_for(pool_dir, PLASMITE_PLUGINS="dirpool_transport", PYTHONPATH=path,
                   DIRPOOL_ROOT=str(tmp_path / "dirpools"))


@pytest.fixture
def url(env, monkeypatch):
    from dirpool_transport import DirClient

    monkeypatch.setenv("DIRPOOL_ROOT", env["DIRPOOL_ROOT"])
    DirClient("dirpool://shelf").create_pool("chat")
    return "dirpool://shelf/chat"


def test_feed_fetch_and_follow(pool_dir, env, url):
    r = pls("feed", url, "--tag", "t", '{"n":1}', pool_dir=pool_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["seq"] == 1
    r = pls("feed", url, pool_dir=pool_dir, env=env, input='{"n":2}\n{"n":3}\n')
    assert r.returncode == 0, r.stderr and [x["seq"] for x in jsonl(r.stdout)] == [2, 3]

    r = pls("fetch", url, "2", pool_dir=pool_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"] == {"n": 2}
    r = pls("fetch", url, "9", pool_dir=pool_dir, env=env)
    assert r.returncode == 3 and "1..3" in error_of(r)["hint"]

    r = pls("follow", url, "--tail", "2", "--jsonl", "--timeout", "500ms", pool_dir=pool_dir, env=env)
    assert r.returncode == 124, r.stderr
    assert [m["data"]["n"] for m in jsonl(r.stdout)] == [2, 3]
    r = pls("follow", url, "--tail", "5", "--tag", "t", "--jsonl", "--timeout", "300ms", pool_dir=pool_dir, env=env)
    assert [m["seq"] for m in jsonl(r.stdout)] == [1]
    r = pls("follow", url, "--since", "1h", pool_dir=pool_dir, env=env)
    assert r.returncode == 2 and "--since" in error_of(r)["message"]  # not declared by the transport


def test_live_follow_across_processes(pool_dir, env, url):
    f = spawn("follow", url, "--one", "--jsonl", "--timeout", "30s", pool_dir=pool_dir, env=env)
    time.sleep(1.0)
    assert pls("feed", url, '{"status":"green"}', pool_dir=pool_dir, env=env).returncode == 0
    out, err = f.communicate(timeout=60)
    assert f.returncode == 0, err
    assert jsonl(out.decode())[0]["data"] == {"status": "green"}


def test_duplex_piped(pool_dir, env, url):
    pls("feed", url, '{"from":"alice","msg":"hi"}', pool_dir=pool_dir, env=env)
    r = pls("duplex", url, "--me", "bot", "--tail", "1", "--jsonl", pool_dir=pool_dir, env=env,
            input='{"from":"bot","msg":"ready"}\n')
    assert r.returncode == 0, r.stderr
    assert [m["data"]["from"] for m in jsonl(r.stdout)] == ["alice"]  # history; its own message hidden
    assert json.loads(pls("fetch", url, "2", pool_dir=pool_dir, env=env).stdout)["data"]["msg"] == "ready"


def test_transport_refuses_options_it_cannot_honour(pool_dir, env, url):
    r = pls("feed", url, "--token", "x", "{}", pool_dir=pool_dir, env=env)
    assert r.returncode == 2 and "token" in error_of(r)["message"]
