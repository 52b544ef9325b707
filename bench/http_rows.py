"""HTTP rows (remote protocol v0): append req/s from one keep-alive client and
remote tail msg/s, against ``pls serve`` started on a free loopback port and
stopped by its pid.  Skipped with a note when plasmite-serve is not installed."""

from __future__ import annotations

import http.client
import os
import subprocess
import time

import msgspec

from bench.cli_rows import find_cli
from bench.util import Result, free_port, installed, payload, payloads, rate_loop, wait_port


def available() -> str | None:
    if not installed("plasmite_serve"):
        return "plasmite-serve not installed: pip install ./plasmite_serve"
    cli, why = find_cli()
    if cli is None:
        return why
    return None


def _start(cli: str, pool_dir: str, port: int, log_path: str):
    env = dict(os.environ, PLASMITE_DIR=pool_dir)
    log = open(log_path, "wb")
    proc = subprocess.Popen([cli, "--dir", pool_dir, "serve", "--bind", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, log


def _stop(proc) -> None:
    proc.terminate()  # the server we started, by its pid
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def http_rows(workdir: str, n: int, max_s: float, tail_n: int) -> list[Result]:
    why = available()
    if why:
        return [Result("plasmite", "http_append", None, "req/s", note=why),
                Result("plasmite", "remote_tail", None, "msg/s", note=why)]
    from plasmite import Client

    cli, _ = find_cli()
    pool_dir = os.path.join(workdir, "http-pools")
    os.makedirs(pool_dir, exist_ok=True)
    with Client(pool_dir) as c:
        c.create_pool("happend", size_bytes=64 << 20).close()
        p = c.create_pool("htail", size_bytes=64 << 20)
        for k in range(0, tail_n, 1000):
            p.append_many(payloads(min(1000, tail_n - k), k))
        p.close()
    port = free_port()
    log_path = os.path.join(workdir, "serve.log")
    proc, log = _start(cli, pool_dir, port, log_path)
    try:
        if not wait_port(port, 20) or proc.poll() is not None:
            log.flush()
            tail = open(log_path, "rb").read().decode(errors="replace").strip().splitlines()[-1:] or [""]
            note = f"`pls serve` did not listen on 127.0.0.1:{port}: {tail[0][:120]}"
            return [Result("plasmite", "http_append", None, "req/s", note=note),
                    Result("plasmite", "remote_tail", None, "msg/s", note=note)]
        out = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = msgspec.json.encode({"data": payload(1), "durability": "fast"})
        hdrs = {"Content-Type": "application/json"}
        status = {"bad": 0, "last": None}

        def step() -> int:
            for _ in range(100):
                conn.request("POST", "/v0/pools/happend/append", body, hdrs)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    status["bad"] += 1
                    status["last"] = r.status
            return 100

        step()
        rate, done = rate_loop(step, n, max_s)
        conn.close()
        if status["bad"]:
            out.append(Result("plasmite", "http_append", None, "req/s", note=f"{status['bad']} non-200 replies (last {status['last']})"))
        else:
            out.append(Result("plasmite", "http_append", rate, "req/s", note=f"one keep-alive http.client connection, {done} requests"))

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.perf_counter()
        conn.request("GET", f"/v0/pools/htail/tail?since_seq=1&max={tail_n}&timeout_ms=10000")
        r = conn.getresponse()
        k = 0
        deadline = t0 + max(10.0, 4 * max_s)
        if r.status == 200:
            while time.perf_counter() < deadline:
                line = r.readline()
                if not line:
                    break
                if line.strip():
                    k += 1
                if k >= tail_n:
                    break
        dt = time.perf_counter() - t0
        conn.close()
        if r.status != 200:
            out.append(Result("plasmite", "remote_tail", None, "msg/s", note=f"tail answered HTTP {r.status}"))
        else:
            out.append(Result("plasmite", "remote_tail", k / dt, "msg/s", ok=k == tail_n,
                              note=f"{k} of {tail_n} JSONL lines via GET /tail"))
        return out
    finally:
        _stop(proc)
        log.close()
