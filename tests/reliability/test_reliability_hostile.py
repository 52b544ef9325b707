"""Hostile input: the HTTP server and the CLI against bad requests and bad environments.

Server (a real ``plasmite serve`` on loopback): schemathesis against its own
OpenAPI document; oversized bodies, bad JSON, bad UTF-8, deep nesting, huge
tag lists; pool names with ``..``, ``/``, NUL and unicode tricks on every
route; missing and wrong tokens on every route (UI and SSE included);
access-mode violations; CORS from a foreign origin. Every case must answer a
JSON error envelope whose kind matches its status, the server must stay up
with no traceback in its log, nothing may appear outside the pool directory,
and a canary pool must read back whole (doctor clean) afterwards.

CLI: broken pipes, a closed stdout, EFBIG through RLIMIT_FSIZE, ENOSPC on a
small tmpfs and read-only pools (immutable file, read-only bind mount; root
ignores file modes, so chmod proves nothing here), each a clear error of the
right kind and exit code, no traceback, stored data intact.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from plasmite import Client
from plasmite_core.doctor import check_pool

from reliability_common import seconds, size

serve_testing = pytest.importorskip("plasmite_serve.testing")
ServerProcess = serve_testing.ServerProcess

TOKEN = "hostile-test-token-0123456789"
STATUS_OF_KIND = {"Usage": (400, 413), "NotFound": 404, "AlreadyExists": 409, "Busy": 423, "Permission": (401, 403),
                  "Corrupt": 500, "Io": 500, "Internal": 500, "RetentionGap": 410}


# ------------------------------------------------------------------ helpers
def request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 20.0) -> tuple[int, dict, bytes]:
    host, port = server.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = {"Host": "localhost", **(headers or {})}
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def assert_error(status: int, body: bytes, *kinds: str) -> str:
    """A JSON error envelope whose kind is one of ``kinds`` and matches the status."""
    assert 400 <= status < 600, (status, body[:300])
    env = json.loads(body)
    kind = env["error"]["kind"]
    assert env["error"]["message"], env
    assert not kinds or kind in kinds, (status, env)
    want = STATUS_OF_KIND[kind]
    assert status in (want if isinstance(want, tuple) else (want,)), (status, env)
    assert "Traceback" not in body.decode("utf-8", "replace")
    return kind


def server_healthy(server) -> None:
    assert server.proc.poll() is None, server.stderr()[-3000:]
    status, _, body = request(server, "GET", "/healthz")
    assert status == 200, body
    log = server.stderr()
    assert "Traceback" not in log, log[-3000:]


CANARY = [{"n": i, "s": "canary-" + "c" * i} for i in range(20)]


def make_canary(pool_dir: Path) -> Path:
    pool_dir.mkdir(parents=True, exist_ok=True)
    with Client(pool_dir) as c, c.pool("canary") as p:
        p.append_many(CANARY, tags=["canary"])
        c.pool("victim").close()  # the target of DELETE probes
    return pool_dir / "canary.plasmite"


def canary_intact(pool_dir: Path) -> None:
    path = pool_dir / "canary.plasmite"
    assert check_pool(path).ok
    with Client(pool_dir) as c, c.open_pool("canary") as p:
        got = [m.data for m in p.tail(since_seq=1, timeout_ms=0) if m.tags == ["canary"]]
    assert got[: len(CANARY)] == CANARY


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A read-write server whose pool directory sits inside a sandbox we can watch."""
    sandbox = tmp_path_factory.mktemp("hostile")
    pool_dir = sandbox / "pools"
    make_canary(pool_dir)
    (sandbox / "outside.plasmite").write_bytes(b"not a pool")
    with ServerProcess(pool_dir, "--max-body-bytes", str(256 * 1024)) as s:
        yield {"server": s, "sandbox": sandbox, "pool_dir": pool_dir}
    canary_intact(pool_dir)


# ------------------------------------------------------------ schemathesis
def test_schemathesis_against_openapi(tmp_path, figures):
    """Property-based requests generated from /openapi.json, on a server of its
    own (it deletes pools): no 5xx, statuses, content types, headers and
    response bodies conform to the document, no resource misbehaviour. Three
    strictness checks are left out and reported to the serve owners instead
    (requests-reliability.md R1): positive_data_acceptance and
    negative_data_rejection (the document does not state every limit the server
    enforces, e.g. empty names, empty tags, the tail timeout cap, a null
    durability) and allow_header_conformance (405 answers list every method)."""
    pytest.importorskip("schemathesis")
    examples = size(4, 100)
    with ServerProcess(tmp_path / "pools", "--max-tail-timeout-ms", "1500") as server:
        cmd = [sys.executable, "-c",
               "import sys; from schemathesis.cli import schemathesis as m; sys.argv[0] = 'st'; m()",
               "run", server.url("/openapi.json"), "-n", str(examples), "--checks", "all",
               "--exclude-checks", "positive_data_acceptance,negative_data_rejection,allow_header_conformance",
               "--seed", "7", "--no-color", "--generation-database", "none", "--request-timeout", "10",
               "--max-time", str(int(seconds(45, 480))), "--phases", "examples,coverage,fuzzing"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds(150, 560), cwd=tmp_path)
        out = proc.stdout + proc.stderr
        summary = out[out.rfind("SUMMARY"):]
        assert proc.returncode == 0, out[-6000:]
        assert "passed" in summary, summary
        server_healthy(server)
    figures["schemathesis"] = " ".join(line.strip() for line in summary.splitlines() if "generated" in line)


# ------------------------------------------------------------ bad bodies
def _nested(depth: int) -> bytes:
    return b'{"data":' + b"[" * depth + b"]" * depth + b"}"


BAD_BODIES = {
    "not_json": (b"{this is not json", ("Usage",)),
    "truncated_json": (b'{"data": {"a": [1, 2', ("Usage",)),
    "bad_utf8": (b'{"data": "\xff\xfe\xc3\x28"}', ("Usage",)),
    "lone_surrogate": (b'{"data": "\\ud800"}', ("Usage", None)),
    "nul_in_key": (b'{"data": {"a\\u0000b": 1}}', (None,)),
    "json_array_body": (b"[1, 2, 3]", ("Usage",)),
    "json_scalar_body": (b"42", ("Usage",)),
    "deep_nesting_5k": (_nested(5000), ("Usage", None)),
    "deep_nesting_60k": (_nested(30000), ("Usage",)),  # 60 KB, under the body limit
    "deep_nesting_5k_in_tags": (b'{"data": 1, "tags": ' + b"[" * 5000 + b"]" * 5000 + b"}", ("Usage",)),
    "huge_tag_list": (json.dumps({"data": 1, "tags": ["t"] * 20000}).encode(), ("Usage",)),
    "tag_not_string": (b'{"data": 1, "tags": [1, {"a": 2}]}', ("Usage",)),
    "tags_not_list": (b'{"data": 1, "tags": "abc"}', ("Usage",)),
    "bad_durability": (b'{"data": 1, "durability": "forever"}', ("Usage",)),
    "missing_data": (b'{"tags": ["a"]}', ("Usage",)),
    "oversized": (b'{"data": "' + b"x" * 300000 + b'"}', ("Usage",)),
    "empty": (b"", ("Usage",)),
    "huge_number": (b'{"data": 1' + b"0" * 5000 + b"}", ("Usage", None)),
    "duplicate_keys": (b'{"data": 1, "data": 2}', ("Usage", None)),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_append_bodies(env, name):
    """Refused with a Usage error (or, where the payload is valid JSON the server
    may accept, stored and read back exactly); never a 5xx."""
    server = env["server"]
    body, kinds = BAD_BODIES[name]
    status, _, out = request(server, "POST", "/v0/pools/canary/append", body)
    if status == 200:
        assert None in kinds, f"{name} was accepted: {out[:200]!r}"
        seq = json.loads(out)["message"]["seq"]
        st2, _, back = request(server, "GET", f"/v0/pools/canary/messages/{seq}")
        m = json.loads(back)
        assert st2 == 200 and m.get("message", m)["seq"] == seq
    else:
        assert_error(status, out, *[k for k in kinds if k])
    server_healthy(server)
    canary_intact(env["pool_dir"])


@pytest.mark.parametrize("route", ["/v0/pools", "/v0/pools/open"])
@pytest.mark.parametrize("body", [b"{", b'{"pool": 5}', b'{"pool": "@", "size_bytes": "big"}',
                                  b'{"pool": "@", "size_bytes": -1}', b'{"pool": "@", "size_bytes": 1e300}',
                                  b'{"pool": "@", "size_bytes": 99999999999999999999999}',
                                  b'{"pool": "@", "size_bytes": 1024}', b'{"pool": "@", "size_bytes": true}',
                                  b'{"pool": ""}', b'{"pool": null}', b"[]", b'"pool"'])
def test_bad_create_and_open_bodies(env, route, body):
    server = env["server"]
    before = tree(env["sandbox"])
    # a fresh, valid name per case, so only the bad field can cause the refusal
    body = body.replace(b"@", b"n" + hashlib.sha1(body + route.encode()).hexdigest()[:10].encode())
    status, _, out = request(server, "POST", route, body)
    assert_error(status, out, "Usage", "NotFound")
    assert tree(env["sandbox"]) == before
    server_healthy(server)


@pytest.mark.parametrize("route", ["/v0/pools", "/v0/pools/open"])
def test_bad_utf8_pool_name_in_body(env, route):
    server = env["server"]
    status, _, out = request(server, "POST", route, b'{"pool": "\xff\xfe"}')
    assert_error(status, out, "Usage")
    server_healthy(server)


def test_slowloris_body_does_not_block_others(env):
    """A client that declares a body and never sends it does not stall the server."""
    import socket

    server = env["server"]
    host, port = server.address.rsplit(":", 1)
    stalled = []
    for _ in range(8):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /v0/pools/canary/append HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 60000\r\n\r\n{\"data\":")
        stalled.append(s)
    try:
        t0 = time.monotonic()
        status, _, _ = request(server, "GET", "/v0/pools/canary/info", timeout=10)
        assert status == 200 and time.monotonic() - t0 < 5
    finally:
        for s in stalled:
            s.close()
    server_healthy(server)


# ------------------------------------------------------------ pool names
EVIL_NAMES = [
    "..", ".", "../outside", "..%2Foutside", "%2E%2E", "%2e%2e%2foutside", "a%2Fb", "%2F", "%2Fetc%2Fpasswd",
    "a%00b", "%00", "canary%00.plasmite", "%E2%80%AE" + "etisamlp.yranac",  # RTL override
    "%EF%BC%8E%EF%BC%8E",  # fullwidth dots
    "%C0%AE%C0%AE",  # overlong UTF-8 dots
    "%FF%FE", "a%0Ab", "a%0D%0AX-Injected:%201", "con", "-rf", "." * 3, "x" * 300, "%20", "a%5Cb", "~root",
]
ROUTES = [
    ("GET", "/v0/pools/{p}/info", None),
    ("POST", "/v0/pools/{p}/append", b'{"data": {"evil": true}}'),
    ("GET", "/v0/pools/{p}/messages/1", None),
    ("GET", "/v0/pools/{p}/tail?timeout_ms=0", None),
    ("DELETE", "/v0/pools/{p}", None),
    ("GET", "/v0/ui/pools/{p}/info", None),
    ("GET", "/v0/ui/pools/{p}/events?timeout_ms=0", None),
]


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_evil_pool_names_on_every_route(env, name):
    server = env["server"]
    before = tree(env["sandbox"])
    outside = (env["sandbox"] / "outside.plasmite").read_bytes()
    for method, tmpl, body in ROUTES:
        status, hdrs, out = request(server, method, tmpl.format(p=name), body)
        assert "x-injected" not in hdrs
        if status < 400:
            # only a plain, valid name may succeed (e.g. "con", "-rf", "..." are ordinary names)
            decoded = urllib.parse.unquote(name)
            assert "/" not in decoded and "\0" not in decoded and decoded not in (".", ".."), (method, tmpl, name)
            continue
        assert_error(status, out, "Usage", "NotFound")
    for route, field in (("/v0/pools", "pool"), ("/v0/pools/open", "pool")):
        decoded = urllib.parse.unquote(name)
        status, _, out = request(server, "POST", route, json.dumps({field: decoded}).encode())
        if status >= 400:
            assert_error(status, out, "Usage", "NotFound", "AlreadyExists")
        else:
            assert "/" not in decoded and "\0" not in decoded and decoded not in (".", "..")
            request(server, "DELETE", "/v0/pools/" + urllib.parse.quote(decoded, safe=""))
    # nothing created or removed outside the pool directory; the decoy untouched
    after = tree(env["sandbox"])
    assert {p for p in after ^ before if not p.startswith("pools/")} == set(), after ^ before
    assert (env["sandbox"] / "outside.plasmite").read_bytes() == outside
    server_healthy(server)
    canary_intact(env["pool_dir"])


# ------------------------------------------------------------ tokens, access, CORS
def _every_route():
    return [
        ("GET", "/v0/pools", None), ("POST", "/v0/pools", b'{"pool": "tk"}'), ("POST", "/v0/pools/open", b'{"pool": "canary"}'),
        ("GET", "/v0/pools/canary/info", None), ("DELETE", "/v0/pools/victim", None),
        ("POST", "/v0/pools/canary/append", b'{"data": 1}'), ("GET", "/v0/pools/canary/messages/1", None),
        ("GET", "/v0/pools/canary/tail?timeout_ms=0", None), ("GET", "/v0/ui/pools", None),
        ("GET", "/v0/ui/pools/canary/info", None), ("GET", "/v0/ui/pools/canary/events?timeout_ms=0", None),
    ]


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-token")
    make_canary(d / "pools")
    tf = d / "token"
    tf.write_text(TOKEN)
    with ServerProcess(d / "pools", "--token-file", str(tf)) as s:
        yield s, d / "pools"


BAD_AUTH = [None, "", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Bearer {TOKEN.upper()}", f"Basic {TOKEN}",
            "Bearer", f"Bearer {TOKEN} ", "Bearer \u00e9", f"bearer{TOKEN}", f"Token {TOKEN}"]


@pytest.mark.parametrize("auth", BAD_AUTH, ids=[repr(a)[:24] for a in BAD_AUTH])
def test_wrong_and_missing_tokens_on_every_route(token_server, auth):
    server, pool_dir = token_server
    for method, path, body in _every_route():
        headers = {} if auth is None else {"Authorization": auth.encode("utf-8").decode("latin-1")}
        # the token in the query string is not a credential either
        for p in (path, path + ("&" if "?" in path else "?") + "token=" + TOKEN):
            status, _, out = request(server, method, p, body, headers)
            assert status == 401, (method, p, auth, status, out[:200])
            assert_error(status, out, "Permission")
    canary_intact(pool_dir)  # the unauthenticated DELETE and appends changed nothing
    with Client(pool_dir) as c:
        assert [p.name for p in c.list_pools()] == ["canary", "victim"]
    server_healthy(server)


@pytest.mark.parametrize("mode,allowed", [("read-only", {"GET"}), ("write-only", {"POST"})])
def test_access_mode_violations_on_every_route(tmp_path, mode, allowed):
    make_canary(tmp_path / "pools")
    with ServerProcess(tmp_path / "pools", "--access", mode) as server:
        for method, path, body in _every_route():
            status, _, out = request(server, method, path, body)
            reads = method == "GET" or path == "/v0/pools/open"
            writes = method in ("POST", "DELETE") and path != "/v0/pools/open"
            if (mode == "read-only" and writes) or (mode == "write-only" and reads and "/ui/" not in path and path != "/v0/pools/open"):
                assert status == 403, (mode, method, path, status, out[:200])
                assert_error(status, out, "Permission")
        server_healthy(server)
    canary_intact(tmp_path / "pools")


def test_foreign_origin_gets_no_cors_grant_anywhere(tmp_path):
    make_canary(tmp_path / "pools")
    with ServerProcess(tmp_path / "pools", "--cors-origin", "https://app.example") as server:
        for origin in ("https://evil.example", "null", "https://app.example.evil", "http://app.example", "HTTPS://APP.EXAMPLE"):
            for method, path, body in _every_route():
                if method == "DELETE":
                    continue
                _, hdrs, _ = request(server, method, path, body, {"Origin": origin})
                assert hdrs.get("access-control-allow-origin") in (None, ""), (origin, method, path, hdrs)
                assert "access-control-allow-credentials" not in hdrs
                st_, hdrs, out = request(server, "OPTIONS", path.split("?")[0],
                                         headers={"Origin": origin, "Access-Control-Request-Method": method,
                                                  "Access-Control-Request-Headers": "authorization,content-type"})
                assert hdrs.get("access-control-allow-origin") in (None, ""), (origin, path, hdrs)
                assert st_ >= 400
        server_healthy(server)
    canary_intact(tmp_path / "pools")


# ------------------------------------------------------------ the CLI
PLS = [sys.executable, "-m", "plasmite_cli"]


def run_pls(args, pool_dir, *, input=None, preexec_fn=None, timeout=60, **kw):
    return subprocess.run([*PLS, "--dir", str(pool_dir), *args], input=input, capture_output=True,
                          preexec_fn=preexec_fn, timeout=timeout, **kw)


def assert_cli_error(proc, kind: str, code: int) -> dict:
    err = proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == code, (proc.returncode, err[-1000:])
    env_ = json.loads(err.strip().splitlines()[-1])
    assert env_["error"]["kind"] == kind, env_
    return env_


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cli_pool(tmp_path):
    d = tmp_path / "pools"
    make_canary(d)
    return d


def test_follow_into_a_broken_pipe(cli_pool):
    """`pls follow big --tail 3000 | head -c 1` and friends, and a live follow
    whose reader goes away: exit promptly and quietly, no traceback."""
    with Client(cli_pool) as c, c.pool("big", 4 << 20) as pool:
        pool.append_many([{"i": i, "pad": "p" * 80} for i in range(3000)])
    for args in (["follow", "big", "--tail", "3000", "--timeout", "3s"],
                 ["follow", "big", "--tail", "3000", "--jsonl", "--timeout", "3s"],
                 ["fetch", "canary", "1"], ["pool", "list"], ["pool", "info", "canary"]):
        p1 = subprocess.Popen([*PLS, "--dir", str(cli_pool), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p2 = subprocess.Popen(["head", "-c", "1"], stdin=p1.stdout, stdout=subprocess.DEVNULL)
        p1.stdout.close()
        p2.wait(timeout=30)
        try:
            rc = p1.wait(timeout=30)
        finally:
            if p1.poll() is None:
                p1.kill()
        err = p1.stderr.read().decode()
        p1.stderr.close()
        assert "Traceback" not in err and "Exception ignored" not in err, (args, err)
        assert rc in (0, 141, -signal.SIGPIPE), (args, rc, err)
    # live: the reader closes, then new messages arrive; follow must notice and exit
    p = subprocess.Popen([*PLS, "--dir", str(cli_pool), "follow", "canary"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(0.8)
    p.stdout.close()
    with Client(cli_pool) as c, c.open_pool("canary") as pool:
        for i in range(3):
            pool.append({"after": i})
            time.sleep(0.2)
    try:
        rc = p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert rc in (0, 141, -signal.SIGPIPE), (rc, err)
    canary_intact(cli_pool)


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def test_closed_stdout(cli_pool):
    """Commands with fd 1 closed: a clear error or success, never a traceback;
    a feed still stores exactly its message."""
    for args in (["feed", "canary", '{"closed": 1}'], ["fetch", "canary", "1"], ["follow", "canary", "--tail", "2"],
                 ["pool", "list"], ["doctor", "canary"]):
        cmd = " ".join(map(shlex_quote, [*PLS, "--dir", str(cli_pool), *args]))
        proc = subprocess.run(["sh", "-c", f"exec {cmd} >&-"], capture_output=True, text=True, timeout=30)
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 8, 120, 141), (args, proc.returncode, proc.stderr)
    with Client(cli_pool) as c, c.open_pool("canary") as pool:
        stored = [m.data for m in pool.tail(since_seq=1, timeout_ms=0) if m.data == {"closed": 1}]
    assert len(stored) == 1
    canary_intact(cli_pool)


def _fsize_limit(nbytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def test_file_size_limit_efbig(cli_pool):
    """RLIMIT_FSIZE below the pool size: create fails with an Io error (exit 8),
    leaves no file behind; appends to an existing pool are unaffected (the file
    never grows)."""
    before = tree(cli_pool)
    proc = run_pls(["pool", "create", "big", "--size", "8M"], cli_pool, preexec_fn=_fsize_limit(1 << 20))
    assert_cli_error(proc, "Io", 8)
    assert tree(cli_pool) == before
    proc = run_pls(["feed", "canary", '{"under": "limit"}'], cli_pool, preexec_fn=_fsize_limit(4096))
    assert proc.returncode == 0, proc.stderr[-500:]
    proc = run_pls(["feed", "--create", "fresh", '{"x": 1}'], cli_pool, preexec_fn=_fsize_limit(1 << 16))
    assert_cli_error(proc, "Io", 8)
    assert not (cli_pool / "fresh.plasmite").exists()
    canary_intact(cli_pool)


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs root and `unshare -m` (mount namespaces)")


def _in_namespace(setup: str, cmds: list[list[str]]) -> list[tuple[int, str, str]]:
    """Run commands in a private mount namespace after ``setup`` (shell); returns (rc, out, err)."""
    import shlex

    script = setup + "\n" + "\n".join(
        f"{' '.join(shlex.quote(a) for a in c)} >\"$T/out{i}\" 2>\"$T/err{i}\"; echo $? >\"$T/rc{i}\"" for i, c in enumerate(cmds))
    import tempfile

    t = tempfile.mkdtemp(prefix="plasmite-ns-")
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", f"export T={shlex.quote(t)}\n" + script],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = []
        for i in range(len(cmds)):
            rd = lambda n: (Path(t) / f"{n}{i}").read_text()  # noqa: E731
            out.append((int(rd("rc")), rd("out"), rd("err")))
        return out
    finally:
        shutil.rmtree(t, ignore_errors=True)


@needs_unshare
def test_full_file_system_enospc(tmp_path):
    """A 512 KiB tmpfs: creating a pool that does not fit is a clear Io error;
    a pool created before the disk filled keeps taking appends (its blocks are
    reserved), and nothing stored is damaged."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    pls = [*PLS, "--dir", str(mnt)]
    check = [sys.executable, "-c",
             "import sys; from plasmite_core.doctor import check_pool; r = check_pool(sys.argv[1]); "
             "print(r.ok, r.messages_checked)", str(mnt / "a.plasmite")]
    feeder = [sys.executable, "-c",
              "import sys\nfrom plasmite import Client\np = Client(sys.argv[1]).open_pool('a')\n"
              "for i in range(4000): p.append({'i': i, 'pad': 'x' * 200})\nprint(p.bounds())", str(mnt)]
    res = _in_namespace(
        f"mount -t tmpfs -o size=512k tmpfs {mnt}",
        [[*pls, "pool", "create", "a", "--size", "300K"],
         [*pls, "pool", "create", "b", "--size", "300K"],
         ["sh", "-c", f"head -c 1000000 /dev/zero > {mnt}/filler 2>/dev/null; df -k {mnt}"],
         feeder, check, [*pls, "fetch", "a", "4000"]])
    (rc_a, _, err_a), (rc_b, _, err_b), (_, df, _), (rc_feed, out_feed, err_feed), (rc_chk, out_chk, _), (rc_f, out_f, _) = res
    assert df.split()[-3] == "0", df  # the file system really is full
    assert rc_a == 0, err_a
    assert rc_b == 8 and json.loads(err_b.strip().splitlines()[-1])["error"]["kind"] == "Io", err_b
    assert "Traceback" not in err_b
    assert rc_feed == 0, (rc_feed, err_feed[-800:])  # no SIGBUS on the full file system
    assert rc_chk == 0 and out_chk.startswith("True"), out_chk
    assert rc_f == 0 and json.loads(out_f)["data"]["i"] == 3999


@needs_unshare
def test_read_only_bind_mount(cli_pool):
    """Pools on a read-only mount: follow, fetch and doctor work; feed is a
    Permission error (exit 6); the file is unchanged."""
    path = cli_pool / "canary.plasmite"
    digest = file_digest(path)
    pls = [*PLS, "--dir", str(cli_pool)]
    res = _in_namespace(
        f"mount --bind -o ro {cli_pool} {cli_pool}",
        [[*pls, "feed", "canary", '{"x": 1}'], [*pls, "fetch", "canary", "3"],
         [*pls, "follow", "canary", "--tail", "5", "--timeout", "200ms"], [*pls, "doctor", "canary"],
         [*pls, "pool", "create", "new"], [*pls, "pool", "delete", "canary"]])
    (rc, _, err), (rc_fetch, out_fetch, _), (rc_follow, out_follow, _), (rc_doc, _, _), (rc_new, _, err_new), (rc_del, _, err_del) = res
    assert rc == 6 and json.loads(err.strip().splitlines()[-1])["error"]["kind"] == "Permission", err
    assert rc_fetch == 0 and json.loads(out_fetch)["data"] == CANARY[2]
    assert rc_follow in (0, 124) and out_follow.count('"seq"') == 5, out_follow
    assert rc_doc == 0
    assert rc_new == 6 and "Traceback" not in err_new, err_new
    assert rc_del == 6 and "Traceback" not in err_del, err_del
    assert file_digest(path) == digest
    canary_intact(cli_pool)


def test_immutable_pool_file(cli_pool):
    """chattr +i (root cannot write it either): reads work, writes are Permission errors."""
    path = cli_pool / "canary.plasmite"
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here (needs root and a file system with immutable files)")
    try:
        digest = file_digest(path)
        proc = run_pls(["feed", "canary", '{"x": 1}'], cli_pool)
        assert_cli_error(proc, "Permission", 6)
        proc = run_pls(["fetch", "canary", "1"], cli_pool)
        assert proc.returncode == 0 and json.loads(proc.stdout)["data"] == CANARY[0]
        proc = run_pls(["doctor", "canary"], cli_pool)
        assert proc.returncode == 0, proc.stderr
        proc = run_pls(["pool", "delete", "canary"], cli_pool)
        assert proc.returncode == 6 and b"Traceback" not in proc.stderr, proc.stderr
        assert file_digest(path) == digest
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    canary_intact(cli_pool)


@pytest.mark.parametrize("payload,kind,code", [
    (b"{not json}\n", "Usage", 2),
    (b'{"a": "\xff\xfe"}\n', "Usage", 2),
    (b"[" * 100000 + b"]" * 100000 + b"\n", "Usage", 2),
], ids=["not_json", "bad_utf8", "deep_nesting_100k"])
def test_cli_feed_bad_input(cli_pool, payload, kind, code):
    digest_before = check_pool(cli_pool / "canary.plasmite").newest_seq
    proc = run_pls(["feed", "canary"], cli_pool, input=payload)
    assert_cli_error(proc, kind, code)
    assert check_pool(cli_pool / "canary.plasmite").newest_seq == digest_before
    canary_intact(cli_pool)
