"""`pls serve` stops on SIGTERM (systemd, containers) and SIGINT (Ctrl-C) with
a graceful shutdown that ends open tails cleanly, and exits 0."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from plasmite_serve.client import RemoteClient

PLS = [sys.executable, "-m", "plasmite_cli"]


def _start(tmp_path):
    ready = tmp_path / "ready"
    env = dict(os.environ, PLASMITE_SERVE_READY_FILE=str(ready))
    err = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen([*PLS, "--dir", str(tmp_path / "pools"), "serve", "--bind", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                            start_new_session=True)  # signals reach only this server
    err.close()
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return proc, ready.read_text().strip()


def _tail_reader(address: str, pool: str, out: dict) -> None:
    """Read one tail response to its end; record how it ended."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", f"/v0/pools/{pool}/tail?last=1")
        resp = conn.getresponse()
        out["status"] = resp.status
        out["body"] = resp.read()  # raises IncompleteRead if the stream is cut off
        out["ended"] = "clean"
    except Exception as exc:  # recorded for the assertion
        out["ended"] = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_0_after_a_graceful_stop_that_ends_open_tails(tmp_path, sig):
    proc, address = _start(tmp_path)
    try:
        pool = RemoteClient(f"http://{address}").create_pool("bye")
        pool.append({"n": 1})
        results = [{} for _ in range(3)]
        readers = [threading.Thread(target=_tail_reader, args=(address, "bye", r)) for r in results]
        for t in readers:
            t.start()
        deadline = time.monotonic() + 30
        while not all("status" in r for r in results):  # every tail is open and streaming
            assert time.monotonic() < deadline, results
            time.sleep(0.02)
        started = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(30)
        stopped = time.monotonic() - started
        for t in readers:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = (tmp_path / "stderr.log").read_text()
    assert code == 0, stderr
    assert stopped < 10, stopped  # within a few seconds, loaded box allowance included
    assert "Traceback" not in stderr
    for r in results:
        assert r["status"] == 200 and r["ended"] == "clean", r
        # the message already in the pool was delivered before the stream ended
        assert b'"n":1' in r["body"]
