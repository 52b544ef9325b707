"""Remote pool refs (``http://host:port/POOL``) through the transport hook.

The CLI has no HTTP code of its own: a URL ref is opened by the transport a
plugin registers for its scheme (plasmite-serve provides http/https). These
tests run a real ``pls serve`` on loopback and drive feed/follow/duplex with
URLs; they are skipped when plasmite-serve is not installed.
"""

from __future__ import annotations

import importlib.metadata

import json
import socket
import subprocess
import time

import pytest

from cli_support import error_of, jsonl, pls, spawn

try:  # the installed distribution, not the checkout folder of the same name
    importlib.metadata.distribution("plasmite-serve")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("plasmite-serve is not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(pool_dir, *args):
    port = free_port()
    proc = spawn("serve", "--bind", f"127.0.0.1:{port}", *args, pool_dir=pool_dir, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(proc.stderr.read().decode())
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def server(pool_dir, tmp_path):
    token_file = tmp_path / "token.txt"
    token_file.write_text("s3cret-token\n")
    proc, base = start_server(pool_dir, "--token-file", str(token_file))
    yield base, str(token_file)
    stop_server(proc)


def test_remote_duplex_piped(pool_dir):
    proc, base = start_server(pool_dir)
    try:
        pls("pool", "create", "chat", pool_dir=pool_dir)
        r = pls("duplex", f"{base}/chat", "--me", "bot", pool_dir=pool_dir,
                input='{"from":"bot","msg":"boot"}\n{"from":"bot","msg":"ready"}\n')
        assert r.returncode == 0, r.stderr
        msgs = jsonl(pls("follow", "chat", "--tail", "5", "--jsonl", "--timeout", "200ms", pool_dir=pool_dir).stdout)
        assert [m["data"]["msg"] for m in msgs] == ["boot", "ready"]
        r = pls("duplex", f"{base}/chat", "--me", "bot", "--since", "1h", pool_dir=pool_dir, input="{}")
        assert r.returncode == 2 and "--since" in error_of(r)["message"]
    finally:
        stop_server(proc)


def test_remote_feed_follow_and_filters(pool_dir, server):
    base, token_file = server
    pls("pool", "create", "chat", pool_dir=pool_dir)
    auth = ["--token-file", token_file]
    r = pls("feed", f"{base}/chat", *auth, "--tag", "remote", '{"from":"alice","msg":"hi all"}', pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    receipt = json.loads(r.stdout)
    assert receipt["seq"] == 1 and receipt["meta"] == {"tags": ["remote"]} and "data" not in receipt
    r = pls("feed", f"{base}/chat", *auth, pool_dir=pool_dir, input='{"n":2}\n{"n":3}\n')
    assert r.returncode == 0, r.stderr
    assert [x["seq"] for x in jsonl(r.stdout)] == [2, 3]

    r = pls("follow", f"{base}/chat", *auth, "--tail", "3", "--jsonl", "--timeout", "500ms", pool_dir=pool_dir)
    assert r.returncode == 124, r.stderr
    assert [m["seq"] for m in jsonl(r.stdout)] == [1, 2, 3]
    r = pls("follow", f"{base}/chat", *auth, "--tail", "1", "--where", ".data.n == 3", "--one", "--jsonl",
            pool_dir=pool_dir)
    assert r.returncode == 0 and jsonl(r.stdout)[0]["data"] == {"n": 3}
    r = pls("follow", f"{base}/chat", *auth, "--tail", "2", "--where", ".data.n > 0", "--jsonl",
            "--timeout", "500ms", pool_dir=pool_dir)
    assert [m["data"]["n"] for m in jsonl(r.stdout)] == [2, 3]  # --tail counts matching messages
    t0 = time.monotonic()
    r = pls("follow", f"{base}/chat", *auth, "--tail", "5", "--tag", "remote", "--jsonl", "--timeout", "300ms",
            pool_dir=pool_dir)
    assert [m["seq"] for m in jsonl(r.stdout)] == [1]
    assert time.monotonic() - t0 < 4.5  # the history scan ends at the newest message, no 5 s wait
    # local view of the same pool agrees
    assert json.loads(pls("fetch", "chat", "1", pool_dir=pool_dir).stdout)["data"]["msg"] == "hi all"
    r = pls("fetch", f"{base}/chat", "2", *auth, pool_dir=pool_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"] == {"n": 2}
    r = pls("fetch", f"{base}/chat", "99", *auth, pool_dir=pool_dir)
    assert r.returncode == 3 and "1..3" in error_of(r)["hint"]


def test_remote_live_follow(pool_dir, server):
    base, token_file = server
    pls("pool", "create", "live", pool_dir=pool_dir)
    # --tail 1 --one: the newest message, or the next one if the pool is empty,
    # so the result does not depend on when the follower connects.
    f = spawn("follow", f"{base}/live", "--token-file", token_file, "--tail", "1", "--one", "--jsonl",
              pool_dir=pool_dir)
    time.sleep(0.5)
    assert pls("feed", "live", '{"status":"green"}', pool_dir=pool_dir).returncode == 0
    out, err = f.communicate(timeout=30)
    assert f.returncode == 0, err
    assert jsonl(out.decode())[0]["data"] == {"status": "green"}


def test_remote_errors(pool_dir, server):
    base, token_file = server
    r = pls("feed", f"{base}/missing", "--token-file", token_file, "{}", pool_dir=pool_dir)
    assert r.returncode == 3 and error_of(r)["kind"] == "NotFound"
    pls("pool", "create", "guarded", pool_dir=pool_dir)
    r = pls("feed", f"{base}/guarded", "{}", pool_dir=pool_dir)  # no token
    assert r.returncode == 6 and error_of(r)["kind"] == "Permission"
    r = pls("feed", f"{base}/guarded", "--create", "{}", pool_dir=pool_dir)  # --create needs the token too
    assert r.returncode == 6 and "--token-file" in error_of(r)["hint"]
