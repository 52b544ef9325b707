"""`pls serve` flags, `serve check`, `serve init` and TLS, through real processes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest

from plasmite_core.errors import ErrorKind
from plasmite_serve.client import RemoteClient, RemoteError
from plasmite_serve.testing import ServerProcess


def serve_cmd(*args, cwd=None, env=None):
    """Run `python -m plasmite_serve ARGS` (the same group `pls serve` mounts)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "plasmite_serve", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=full_env)


def error_of(proc) -> dict:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    return json.loads(lines[-1])["error"]


def test_check_json_defaults(tmp_path):
    proc = serve_cmd("--dir", str(tmp_path), "check", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["check"]
    assert report["status"] == "valid"
    assert report["listen"] == "127.0.0.1:9700" and report["scope"] == "loopback only"
    assert report["base_url"] == "http://127.0.0.1:9700" and report["web_ui"].endswith("/ui")
    assert report["auth"] == "none" and report["tls"] == "disabled" and report["access"] == "read-write"
    limits = report["limits"]
    effective = limits.pop("max_connections_effective")
    assert limits == {
        "max_body_bytes": 1048576, "max_tail_timeout_ms": 30000, "max_tail_concurrency": 64, "max_pool_bytes": 1 << 30,
        "idle_timeout_ms": 30000, "head_timeout_ms": 10000, "body_timeout_ms": 30000, "max_connections": 1024,
        "lock_timeout_ms": 5000,
    }
    assert 8 <= effective <= 1024
    assert report["allowed_hosts"] == ["localhost", "*.localhost", "loopback IPs"]


def test_check_reports_hosts_timeouts_and_the_descriptor_cap(tmp_path):
    """--allowed-host entries are normalized; a low descriptor limit lowers the connection cap to half of it."""
    proc = subprocess.run(
        ["prlimit", "--nofile=256", sys.executable, "-m", "plasmite_serve", "--dir", str(tmp_path),
         "--allowed-host", "Pools.Example.COM", "--allowed-host", ".lan", "--allowed-host", "[::1]",
         "--head-timeout-ms", "1500", "--body-timeout-ms", "2500", "--idle-timeout-ms", "3500",
         "--lock-timeout-ms", "700", "check", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["check"]
    assert report["allowed_hosts"][-3:] == ["pools.example.com", ".lan", "::1"]
    limits = report["limits"]
    assert (limits["head_timeout_ms"], limits["body_timeout_ms"], limits["idle_timeout_ms"],
            limits["lock_timeout_ms"]) == (1500, 2500, 3500, 700)
    assert limits["max_connections"] == 1024 and limits["max_connections_effective"] == 128
    text = serve_cmd("--dir", str(tmp_path), "--bind", "0.0.0.0:9700", "--allow-non-loopback", "--access",
                     "read-only", "check").stdout
    assert "any IP address" in text and "head 10000 ms" in text


def test_check_text_and_effective_values(tmp_path):
    token = tmp_path / "t"
    token.write_text("abc\n")
    proc = serve_cmd("--dir", str(tmp_path), "--bind", "127.0.0.1:9811", "--token-file", str(token), "--access",
                     "read-only", "--cors-origin", "https://x.example:8443", "--max-body-bytes", "10",
                     "--max-tail-timeout-ms", "20", "--max-tail-concurrency", "3", "check")
    assert proc.returncode == 0, proc.stderr
    assert "Configuration valid." in proc.stdout and "127.0.0.1:9811" in proc.stdout
    assert "https://x.example:8443" in proc.stdout and "read-only" in proc.stdout
    proc = serve_cmd("--dir", str(tmp_path), "--token-file", str(token), "--cors-origin", "https://x.example:443/",
                     "check", "--json")
    report = json.loads(proc.stdout)["check"]
    assert report["auth"] == "bearer token (--token-file)"
    assert report["cors_allowed_origins"] == ["https://x.example"]


@pytest.mark.parametrize(
    "args,kind,fragment",
    [
        (["--bind", "0.0.0.0:9700"], "Usage", "non-loopback"),
        (["--bind", "0.0.0.0:9700", "--allow-non-loopback"], "Usage", "--token-file"),
        (["--bind", "0.0.0.0:9700", "--allow-non-loopback", "--token", "x"], "Usage", "--token-file"),
        (["--bind", "0.0.0.0:9700", "--allow-non-loopback", "--token-file", "{token}"], "Usage", "TLS"),
        (["--bind", "nonsense"], "Usage", "bind"),
        (["--bind", "127.0.0.1:99999"], "Usage", "port"),
        (["--tls-cert", "{cert}"], "Usage", "--tls-key"),
        (["--tls-self-signed", "--tls-cert", "{cert}", "--tls-key", "{key}"], "Usage", "--tls-self-signed"),
        (["--token", "a", "--token-file", "{token}"], "Usage", "--token"),
        (["--token-file", "{missing}"], "NotFound", "token file"),
        (["--max-body-bytes", "0"], "Usage", "--max-body-bytes"),
        (["--max-tail-timeout-ms", "0"], "Usage", "--max-tail-timeout-ms"),
        (["--max-tail-concurrency", "0"], "Usage", "--max-tail-concurrency"),
        (["--head-timeout-ms", "0"], "Usage", "--head-timeout-ms"),
        (["--body-timeout-ms", "-1"], "Usage", "--body-timeout-ms"),
        (["--idle-timeout-ms", "0"], "Usage", "--idle-timeout-ms"),
        (["--max-connections", "0"], "Usage", "--max-connections"),
        (["--lock-timeout-ms", "0"], "Usage", "--lock-timeout-ms"),
        (["--allowed-host", "https://a.example"], "Usage", "not a URL"),
        (["--allowed-host", "a.example:8080"], "Usage", "no port"),
        (["--allowed-host", "bad host"], "Usage", "--allowed-host"),
        (["--allowed-host", ""], "Usage", "--allowed-host"),
        (["--cors-origin", "*"], "Usage", "wildcard"),
        (["--cors-origin", "https://*.example.com"], "Usage", "wildcard"),
        (["--cors-origin", "https://a.example/path"], "Usage", "path"),
        (["--cors-origin", "ftp://a.example"], "Usage", "scheme"),
        (["--tls-cert", "{key}", "--tls-key", "{key}"], "Usage", "certificate"),
    ],
)
def test_check_refuses_bad_configurations(tmp_path, args, kind, fragment):
    token = tmp_path / "token.txt"
    token.write_text("tok\n")
    init = serve_cmd("init", "--output-dir", str(tmp_path / "tls"), "--json")
    assert init.returncode == 0, init.stderr
    paths = json.loads(init.stdout)["init"]["artifact_paths"]
    subst = {"{token}": str(token), "{cert}": paths["tls_cert"], "{key}": paths["tls_key"],
             "{missing}": str(tmp_path / "nope.txt")}
    argv = [subst.get(a, a) for a in args]
    proc = serve_cmd("--dir", str(tmp_path), *argv, "check")
    assert proc.returncode == ErrorKind.from_label(kind).exit_code, proc.stderr
    err = error_of(proc)
    assert err["kind"] == kind and fragment in err["message"] + err.get("hint", "")
    assert err.get("hint")
    assert "Traceback" not in proc.stderr
    # `serve` itself refuses the same configuration before binding anything.
    run = serve_cmd("--dir", str(tmp_path), *argv)
    assert run.returncode == proc.returncode and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--bind", "0.0.0.0:9700", "--allow-non-loopback", "--access", "read-only"],
        ["--bind", "0.0.0.0:9700", "--allow-non-loopback", "--token-file", "{token}", "--insecure-no-tls"],
        ["--bind", "0.0.0.0:9700", "--allow-non-loopback", "--token-file", "{token}", "--tls-self-signed"],
        ["--bind", "[::1]:9700"],
        ["--bind", "localhost:9700"],
    ],
)
def test_check_accepts_explicit_opt_ins(tmp_path, args):
    token = tmp_path / "token.txt"
    token.write_text("tok\n")
    argv = [str(token) if a == "{token}" else a for a in args]
    proc = serve_cmd("--dir", str(tmp_path), *argv, "check", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["check"]
    if "0.0.0.0:9700" in args:
        assert report["scope"] == "all interfaces"


def test_port_in_use_is_an_io_error(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    try:
        proc = serve_cmd("--dir", str(tmp_path), "--bind", f"127.0.0.1:{port}")
    finally:
        sock.close()
    assert proc.returncode == ErrorKind.IO.exit_code
    err = error_of(proc)
    assert err["kind"] == "Io" and "bind" in err["message"] and err["hint"]


def _fingerprint(pem_path) -> str:
    der = ssl.PEM_cert_to_DER_cert(open(pem_path).read())
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def test_init_writes_private_artifacts_and_commands(tmp_path):
    out = tmp_path / "bootstrap"
    proc = serve_cmd("init", "--output-dir", str(out), "--bind", "127.0.0.1:9443")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["init"]  # JSON because stdout is not a terminal
    paths = result["artifact_paths"]
    token = open(paths["token_file"]).read().strip()
    assert len(token) == 64 and int(token, 16) >= 0
    assert token not in proc.stdout and token not in proc.stderr
    for key in ("token_file", "tls_key"):
        assert stat.S_IMODE(os.stat(paths[key]).st_mode) == 0o600
    assert result["tls_fingerprint"] == _fingerprint(paths["tls_cert"])
    assert any("--tls-ca" in c and "pls feed https://127.0.0.1:9443/demo" in c for c in result["client_commands"])
    assert any("pls follow" in c for c in result["client_commands"])
    assert "--token-file" in result["server_commands"][0]

    again = serve_cmd("init", "--output-dir", str(out))
    assert again.returncode == ErrorKind.ALREADY_EXISTS.exit_code
    assert error_of(again)["kind"] == "AlreadyExists"
    forced = serve_cmd("init", "--output-dir", str(out), "--force", "--json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["init"]["overwrote_existing"] is True
    assert open(paths["token_file"]).read().strip() != token

    refused = serve_cmd("--token", "x", "init", "--output-dir", str(tmp_path / "other"))
    assert refused.returncode == 2 and "--token" in error_of(refused)["message"]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-tls")
    proc = serve_cmd("init", "--output-dir", str(d / "bootstrap"), "--bind", "127.0.0.1:0", "--json")
    assert proc.returncode == 0, proc.stderr
    paths = json.loads(proc.stdout)["init"]["artifact_paths"]
    with ServerProcess(d / "pools", "--token-file", paths["token_file"], "--tls-cert", paths["tls_cert"],
                       "--tls-key", paths["tls_key"]) as s:
        s.paths = paths
        yield s


def test_tls_with_generated_certificate(tls_server):
    paths = tls_server.paths
    assert tls_server.base_url.startswith("https://")
    # The banner may reach stderr just after the ready file appears.
    deadline = time.monotonic() + 10
    while _fingerprint(paths["tls_cert"]) not in tls_server.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _fingerprint(paths["tls_cert"]) in tls_server.stderr()
    with RemoteClient(tls_server.base_url, token_file=paths["token_file"], tls_ca=paths["tls_cert"]) as c:
        pool = c.create_pool("secure")
        msg = pool.append({"tls": True}, ["t"])
        assert pool.get(msg.seq).data == {"tls": True}
        assert [m.seq for m in pool.tail(since_seq=1, timeout_ms=200)] == [msg.seq]


def test_tls_verification_and_auth_failures(tls_server):
    paths = tls_server.paths
    with pytest.raises(RemoteError) as no_token:
        RemoteClient(tls_server.base_url, tls_ca=paths["tls_cert"]).list_pools()
    assert no_token.value.status == 401 and no_token.value.kind == ErrorKind.PERMISSION
    with pytest.raises(Exception) as unverified:
        RemoteClient(tls_server.base_url, token_file=paths["token_file"]).list_pools()
    assert getattr(unverified.value, "kind", None) == ErrorKind.IO and "verif" in str(unverified.value)
    skip = RemoteClient(tls_server.base_url, token_file=paths["token_file"], tls_skip_verify=True)
    assert isinstance(skip.list_pools(), list)
    with pytest.raises(Exception) as plain:
        RemoteClient(tls_server.base_url.replace("https://", "http://"), token_file=paths["token_file"]).list_pools()
    assert getattr(plain.value, "kind", None) == ErrorKind.IO


def test_tls_self_signed(tmp_path):
    with ServerProcess(tmp_path, "--tls-self-signed") as s:
        assert s.base_url.startswith("https://")
        host, port = s.address.rsplit(":", 1)
        pem = ssl.get_server_certificate((host, int(port)))
        der = ssl.PEM_cert_to_DER_cert(pem)
        digest = hashlib.sha256(der).hexdigest().upper()
        fingerprint = "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2))
        assert fingerprint in s.stderr()
        cert = tmp_path / "presented.pem"
        cert.write_text(pem)
        with RemoteClient(s.base_url, tls_ca=str(cert)) as c:  # trust exactly what was presented
            c.create_pool("selfsigned").append({"ok": 1})
            assert c.pool_info("selfsigned").newest_seq == 1


@pytest.mark.skipif(importlib.util.find_spec("plasmite_cli") is None, reason="plasmite-cli not installed")
def test_pls_serve_is_registered_and_feeds_over_tls(tls_server):
    paths = tls_server.paths
    pls = [sys.executable, "-m", "plasmite_cli"]
    helped = subprocess.run(pls + ["serve", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--max-tail-concurrency" in helped.stdout and "init" in helped.stdout
    RemoteClient(tls_server.base_url, token_file=paths["token_file"], tls_ca=paths["tls_cert"]).pool("clitls")
    url = f"{tls_server.base_url}/clitls"
    fed = subprocess.run(pls + ["feed", url, "--token-file", paths["token_file"], "--tls-ca", paths["tls_cert"],
                                '{"from":"cli"}'], capture_output=True, text=True, timeout=60)
    assert fed.returncode == 0, fed.stderr
    assert json.loads(fed.stdout.splitlines()[0])["seq"] == 1
    denied = subprocess.run(pls + ["feed", url, "--tls-ca", paths["tls_cert"], '{"x":1}'],
                            capture_output=True, text=True, timeout=60)
    assert denied.returncode == ErrorKind.PERMISSION.exit_code


@pytest.mark.skipif(importlib.util.find_spec("plasmite_cli") is None, reason="plasmite-cli not installed")
def test_pls_global_dir_reaches_serve(tmp_path):
    pls = [sys.executable, "-m", "plasmite_cli"]
    proc = subprocess.run(pls + ["--dir", str(tmp_path / "global"), "serve", "check", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["check"]["pool_dir"] == str(tmp_path / "global")
    proc = subprocess.run(pls + ["--dir", str(tmp_path / "global"), "serve", "--dir", str(tmp_path / "own"), "check",
                                 "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout)["check"]["pool_dir"] == str(tmp_path / "own")
    bad = subprocess.run(pls + ["serve", "--bind", "0.0.0.0:1", "check"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())  # nothing half-written and "non-loopback" in bad.stderr


def test_sigterm_stops_promptly_with_open_tails(tmp_path):
    """Open tails do not hold the server up: SIGTERM ends it cleanly within seconds."""
    import time as _time

    s = ServerProcess(tmp_path).start()
    c = RemoteClient(s.base_url)
    c.create_pool("bye")
    tails = [c.open_pool("bye").open_stream(last=0) for _ in range(3)]
    started = _time.monotonic()
    code = s.stop()
    assert code == 0, s.stderr()  # a graceful stop is a success
    assert _time.monotonic() - started < 10
    assert "Traceback" not in s.stderr()
    for t in tails:
        t.close()


def test_init_certificate_names(tmp_path):
    from cryptography import x509

    proc = serve_cmd("init", "--output-dir", str(tmp_path), "--san", "pools.example.com", "--san", "10.1.2.3",
                     "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["init"]
    cert = x509.load_pem_x509_certificate(open(result["artifact_paths"]["tls_cert"], "rb").read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert {"localhost", "pools.example.com"} <= set(dns)
    assert {"127.0.0.1", "::1", "10.1.2.3"} <= set(ips)
    assert set(result["tls_names"]) >= {"pools.example.com", "10.1.2.3"}
    assert "https://pools.example.com:9700/demo" in result["client_commands"][0]
    # Clients dial the DNS name, so the printed server command accepts it as Host (an IP always is).
    assert result["server_commands"][0].endswith("--allowed-host pools.example.com")
    bad = serve_cmd("init", "--output-dir", str(tmp_path / "b"), "--san", "bad name!")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())  # nothing half-written


def test_non_loopback_read_only_really_serves(tmp_path):
    """--allow-non-loopback with read-only access binds all interfaces (reached here through loopback)."""
    with ServerProcess(tmp_path, "--access", "read-only", "--allow-non-loopback", bind="0.0.0.0:0") as s:
        assert s.address.startswith("0.0.0.0:")
        assert "all interfaces" in s.stderr()
        c = RemoteClient(f"http://127.0.0.1:{s.port}")
        assert c.list_pools() == []
        with pytest.raises(RemoteError) as denied:
            c.create_pool("nope")
        assert denied.value.status == 403
