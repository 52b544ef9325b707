"""``pls mcp``: MCP over stdio, driven by the official MCP SDK's stdio client,
plus raw JSON-RPC lines the SDK never sends."""

from __future__ import annotations

import json
import subprocess
import time

import anyio
import pytest

from mcp_common import PY, exercise_every_tool, stdio_session

pytestmark = pytest.mark.timeout(120)


def test_sdk_session_calls_every_tool(pool_dir):
    async def main():
        async with stdio_session(pool_dir) as session:
            await exercise_every_tool(session)
            await session.send_ping()

    anyio.run(main)


def test_initialize_explains_the_model(pool_dir):
    proc = _start(pool_dir)
    try:
        init = _ask(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                      "clientInfo": {"name": "t", "version": "0"}}})
        result = init["result"]
        assert result["protocolVersion"] == "2025-06-18"  # a version we speak is echoed
        assert result["serverInfo"]["name"] == "plasmite"
        text = result["instructions"]
        for idea in ("ring", "appends", "plasmite_read", "plasmite_wait", "next_after_seq", "isError"):
            assert idea in text
        other = _ask(proc, {"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "1999-01-01"}})
        assert other["result"]["protocolVersion"] == "2025-11-25"
    finally:
        _finish(proc)


def test_raw_jsonrpc_cases(pool_dir):
    proc = _start(pool_dir)
    try:
        assert _send_raw(proc, b"{not json\n")["error"]["code"] == -32700
        batch = _send_raw(proc, json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).encode() + b"\n")
        assert batch["error"]["code"] == -32600 and batch["id"] is None
        assert _send_raw(proc, b"42\n")["error"]["code"] == -32600
        assert _ask(proc, {"jsonrpc": "2.0", "id": 3, "method": "no/such"})["error"]["code"] == -32601
        assert _ask(proc, {"jsonrpc": "1.0", "id": 4, "method": "ping"})["error"]["code"] == -32600
        assert _ask(proc, {"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"})["error"]["code"] == -32600
        assert _ask(proc, {"jsonrpc": "2.0", "id": 11})["error"]["code"] == -32600
        assert _ask(proc, {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": [1]})["error"]["code"] == -32602
        unknown_tool = _ask(proc, {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "rm_rf"}})
        assert unknown_tool["error"]["code"] == -32602
        # A notification gets no answer: the next line out answers the ping after it.
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        assert _ask(proc, {"jsonrpc": "2.0", "id": "p", "method": "ping"}) == {"jsonrpc": "2.0", "id": "p", "result": {}}
        huge = _ask(proc, _tool(7, "plasmite_wait", {"pool": "x", "timeout_ms": 10**30}))
        assert huge["result"]["isError"] is True
        assert huge["result"]["structuredContent"]["error_kind"] == "Usage"
        assert huge["result"]["structuredContent"]["field"] == "timeout_ms"
        bad_uri = _ask(proc, {"jsonrpc": "2.0", "id": 8, "method": "resources/read", "params": {"uri": "file:///etc/passwd"}})
        assert bad_uri["error"]["code"] == -32602
        missing = _ask(proc, {"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": "plasmite:///pools/none"}})
        assert missing["error"]["code"] == -32002 and missing["error"]["data"]["error_kind"] == "NotFound"
    finally:
        _finish(proc)
    assert proc.returncode == 0


def test_wait_runs_beside_other_requests_and_ends_with_the_client(pool_dir):
    """A pending wait does not block later requests; closing stdin ends it and the process."""
    proc = _start(pool_dir)
    try:
        _ask(proc, _tool(1, "plasmite_pool_create", {"name": "q"}))
        proc.stdin.write((json.dumps(_tool(2, "plasmite_wait", {"pool": "q", "timeout_ms": 60000})) + "\n").encode())
        proc.stdin.flush()
        first = _ask(proc, _tool(3, "plasmite_feed", {"pool": "q", "data": {"go": True}}))
        answers = {m["id"]: m for m in (first, json.loads(proc.stdout.readline()))}  # either may come first
        assert not answers[3]["result"]["isError"]
        assert answers[2]["result"]["structuredContent"]["messages"][0]["data"] == {"go": True}
        proc.stdin.write((json.dumps(_tool(4, "plasmite_wait", {"pool": "q", "timeout_ms": 60000})) + "\n").encode())
        proc.stdin.flush()
        time.sleep(0.3)
        started = time.monotonic()
        proc.stdin.close()
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 15  # not the 60 s of the abandoned wait
    finally:
        _finish(proc)


def test_cancelled_notification_ends_a_wait(pool_dir):
    proc = _start(pool_dir)
    try:
        _ask(proc, _tool(1, "plasmite_pool_create", {"name": "q"}))
        proc.stdin.write((json.dumps(_tool(2, "plasmite_wait", {"pool": "q", "timeout_ms": 60000})) + "\n").encode())
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}\n')
        proc.stdin.flush()
        # The cancelled request is never answered; the next answer is the ping's.
        assert _ask(proc, {"jsonrpc": "2.0", "id": 3, "method": "ping"})["id"] == 3
    finally:
        _finish(proc)


def test_help_and_start_up_cost(pool_dir):
    out = subprocess.run([PY, "-m", "plasmite_cli", "mcp", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "mcpServers" in out.stdout and "--dir" in out.stdout
    listed = subprocess.run([PY, "-m", "plasmite_cli", "--help"], capture_output=True, text=True, timeout=60)
    assert "mcp" in listed.stdout
    # One-shot commands import neither the MCP plugin nor the MCP SDK.
    code = (
        "import sys\nfrom plasmite_cli.main import run\n"
        f"rc = run(['--dir', {str(pool_dir)!r}, 'feed', 'p', '--create', '{{}}'])\n"
        "rc += run(['--dir', " + repr(str(pool_dir)) + ", 'fetch', 'p', '1'])\n"
        "print(rc, sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'plasmite_mcp'))))\n"
    )
    probe = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1] == "0 []", probe.stdout + probe.stderr


# ---------------------------------------------------------------- helpers


def _start(pool_dir) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "plasmite_cli", "mcp", "--dir", str(pool_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _send_raw(proc: subprocess.Popen, line: bytes) -> dict:
    proc.stdin.write(line)
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _ask(proc: subprocess.Popen, message: dict) -> dict:
    return _send_raw(proc, json.dumps(message).encode() + b"\n")


def _tool(id_, name: str, arguments: dict) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def _finish(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        stream.close()
