"""``/mcp`` on ``pls serve``: MCP streamable HTTP, driven by the official MCP
SDK's client, plus raw requests the SDK never sends; access modes, the wait
budget, disconnects, and two agents handing a message over."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time

import anyio
import pytest

from mcp_common import PY, READ_TOOLS, WRITE_TOOLS, exercise_every_tool, http_session, stdio_session
from mcp.shared import exceptions as mcp_exceptions
from plasmite_serve.testing import ServerProcess

pytestmark = pytest.mark.timeout(120)
MCPError = getattr(mcp_exceptions, "MCPError", None) or getattr(mcp_exceptions, "McpError")
TOKEN = "mcp-test-token"


def test_sdk_session_calls_every_tool(pool_dir):
    with ServerProcess(pool_dir, "--token", TOKEN) as server:
        async def main():
            async with http_session(server.url("/mcp"), TOKEN) as session:
                await exercise_every_tool(session)
                await session.send_ping()

        anyio.run(main)


def test_sdk_over_tls(pool_dir):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with ServerProcess(pool_dir, "--tls-self-signed") as server:
        assert server.url().startswith("https://")

        async def main():
            async with httpx2.AsyncClient(verify=False, timeout=60) as http:
                async with streamable_http_client(server.url("/mcp"), http_client=http) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        await session.initialize()
                        result = await session.call_tool("plasmite_feed", {"pool": "t", "data": {"n": 1}, "create": True})
                        assert not result.is_error

        anyio.run(main)


@pytest.mark.parametrize("access", ["read-only", "write-only"])
def test_tool_discovery_follows_the_access_mode(pool_dir, access):
    from plasmite import Client

    Client(pool_dir).create_pool("p").close()
    with ServerProcess(pool_dir, "--access", access) as server:
        async def main():
            async with http_session(server.url("/mcp")) as session:
                names = {t.name for t in (await session.list_tools()).tools}
                forbidden = "plasmite_feed" if access == "read-only" else "plasmite_read"
                assert names == (READ_TOOLS if access == "read-only" else WRITE_TOOLS)
                result = await session.call_tool(forbidden, {"pool": "p", "data": {}} if access == "read-only" else {"pool": "p"})
                assert result.is_error and result.structured_content["error_kind"] == "Permission"
                if access == "read-only":
                    assert [r.name for r in (await session.list_resources()).resources] == ["p"]
                else:
                    with pytest.raises(MCPError) as info:
                        await session.list_resources()
                    assert info.value.data["error_kind"] == "Permission"
                    fed = await session.call_tool("plasmite_feed", {"pool": "p", "data": {"ok": 1}})
                    assert not fed.is_error

        anyio.run(main)


def test_raw_http_cases(pool_dir):
    with ServerProcess(pool_dir, "--token", TOKEN, "--max-body-bytes", "4096") as server:
        post = _poster(server)
        status, _, body = post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=None)
        assert status == 401 and json.loads(body)["error"]["kind"] == "Permission"
        status, _, _ = _request(server, "POST", b"{}", {"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Type": "application/json"}, path="/mcp/x")
        assert status == 404
        for method in ("GET", "DELETE"):
            status, headers, _ = _request(server, method, b"", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 405 and headers["allow"] == "POST"
        status, _, body = post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (status, body) == (202, b"")
        status, _, body = post({"jsonrpc": "2.0", "id": 7, "result": {}})  # a client's response
        assert (status, body) == (202, b"")
        status, _, body = post(b"{oops")
        assert status == 400 and json.loads(body)["error"]["code"] == -32700
        status, _, body = post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
        assert status == 400 and json.loads(body)["error"]["code"] == -32600
        status, _, body = post({"jsonrpc": "2.0", "id": 2, "method": "nope"})
        assert status == 200 and json.loads(body)["error"]["code"] == -32601
        status, _, body = post({"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers={"MCP-Protocol-Version": "2025-11-25"})
        assert status == 200 and json.loads(body) == {"jsonrpc": "2.0", "id": 3, "result": {}}
        status, _, body = post({"jsonrpc": "2.0", "id": 4, "method": "ping"}, headers={"MCP-Protocol-Version": "1.0"})
        assert status == 400 and "MCP-Protocol-Version" in json.loads(body)["error"]["message"]
        status, _, body = post({"jsonrpc": "2.0", "id": 5, "method": "ping"}, headers={"Origin": "http://evil.example"})
        assert status == 403 and json.loads(body)["error"]["kind"] == "Permission"
        status, _, body = post({"jsonrpc": "2.0", "id": 5, "method": "ping"}, headers={"Host": "evil.example"})
        assert status == 403 and json.loads(body)["error"]["kind"] == "Permission"  # DNS rebinding
        status, _, _ = post({"jsonrpc": "2.0", "id": 6, "method": "ping"}, headers={"Origin": server.base_url})
        assert status == 200
        status, _, _ = post({"jsonrpc": "2.0", "id": 8, "method": "ping"}, headers={"Content-Type": "text/plain"})
        assert status == 415
        status, _, _ = post({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                             "params": {"name": "plasmite_feed", "arguments": {"pool": "p", "data": {"x": "x" * 8000}}}})
        assert status == 413
        status, _, body = post({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
                                "params": {"name": "plasmite_wait", "arguments": {"pool": "p", "timeout_ms": 10**30}}})
        result = json.loads(body)["result"]
        assert status == 200 and result["isError"] and result["structuredContent"]["error_kind"] == "Usage"


def test_wait_counts_against_the_tail_budget_and_ends_on_disconnect(pool_dir):
    from plasmite import Client

    Client(pool_dir).create_pool("q").close()
    with ServerProcess(pool_dir, "--max-tail-concurrency", "1") as server:
        post = _poster(server)
        wait = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "plasmite_wait", "arguments": {"pool": "q", "timeout_ms": 60000}}}
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        body = json.dumps(wait).encode()
        holder.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        busy = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the first wait holds the only slot
            status, _, raw = post(dict(wait, params={"name": "plasmite_wait",
                                                     "arguments": {"pool": "q", "timeout_ms": 0}}))
            result = json.loads(raw)["result"]
            if result["isError"] and "wait" in result["structuredContent"]["message"]:
                busy = result["structuredContent"]
                break
            time.sleep(0.1)
        assert busy is not None and busy["error_kind"] == "Busy"
        holder.close()  # the waiting client goes away: its wait ends and frees the slot
        freed_after = None
        started = time.monotonic()
        while time.monotonic() - started < 20:
            status, _, raw = post(dict(wait, params={"name": "plasmite_wait",
                                                     "arguments": {"pool": "q", "timeout_ms": 0}}))
            if not json.loads(raw)["result"]["isError"]:
                freed_after = time.monotonic() - started
                break
            time.sleep(0.1)
        assert freed_after is not None and freed_after < 15  # not the 60 s the wait asked for


def test_two_agents_hand_over_a_message(pool_dir):
    """Agent A waits over HTTP; agent B feeds through `pls mcp`; A's wait returns B's message."""
    with ServerProcess(pool_dir, "--token", TOKEN) as server:
        async def main():
            async with http_session(server.url("/mcp"), TOKEN) as agent_a, stdio_session(pool_dir) as agent_b:
                created = await agent_b.call_tool("plasmite_pool_create", {"name": "handoff"})
                assert not created.is_error
                outcome = {}

                async def wait_for_task():
                    started = time.monotonic()
                    result = await agent_a.call_tool("plasmite_wait", {"pool": "handoff", "timeout_ms": 30000})
                    outcome["result"] = result
                    outcome["seconds"] = time.monotonic() - started

                async with anyio.create_task_group() as group:
                    group.start_soon(wait_for_task)
                    await anyio.sleep(1.0)
                    fed = await agent_b.call_tool("plasmite_feed", {"pool": "handoff", "data": {"task": "review #42"},
                                                                    "tags": ["task"]})
                    assert not fed.is_error
                result = outcome["result"].structured_content
                assert not outcome["result"].is_error and result["timed_out"] is False
                assert [m["data"] for m in result["messages"]] == [{"task": "review #42"}]
                assert result["messages"][0]["meta"]["tags"] == ["task"]
                assert outcome["seconds"] < 25
                # The next wait resumes after the handed-over message.
                follow = await agent_a.call_tool("plasmite_wait", {"pool": "handoff", "timeout_ms": 100,
                                                                   "after_seq": result["next_after_seq"]})
                assert follow.structured_content["timed_out"] is True

        anyio.run(main)


def test_serve_check_reports_the_mcp_endpoint(pool_dir):
    out = subprocess.run([PY, "-m", "plasmite_cli", "--dir", str(pool_dir), "serve", "--bind", "127.0.0.1:9711",
                          "check", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["check"]["mcp"] == "http://127.0.0.1:9711/mcp"
    text = subprocess.run([PY, "-m", "plasmite_cli", "serve", "check"], capture_output=True, text=True, timeout=60)
    assert "MCP:     http://127.0.0.1:9700/mcp" in text.stdout


# ---------------------------------------------------------------- helpers


def _request(server, method: str, body: bytes, headers: dict, path: str = "/mcp") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _poster(server):
    def post(message, *, token: str | None = TOKEN, headers: dict | None = None):
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        return _request(server, "POST", body, h)

    return post


def test_tools_run_over_the_http_transport_client(pool_dir):
    """PoolTools uses only the client API, so a RemoteClient serves as well as a local Client."""
    import asyncio

    from plasmite import Client
    from plasmite_mcp.protocol import Dispatcher
    from plasmite_mcp.tools import PoolTools
    from plasmite_serve.client import RemoteClient

    with ServerProcess(pool_dir) as server:
        async def main():
            dispatcher = Dispatcher(PoolTools(RemoteClient(server.base_url)))

            async def call(name, arguments):
                answer = await dispatcher.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                  "params": {"name": name, "arguments": arguments}})
                assert not answer["result"]["isError"], answer
                return answer["result"]["structuredContent"]

            try:
                await call("plasmite_feed", {"pool": "r", "data": {"n": 1}, "tags": ["a"], "create": True})
                await call("plasmite_feed", {"pool": "r", "data": {"n": 2}})
                assert [m["seq"] for m in (await call("plasmite_read", {"pool": "r"}))["messages"]] == [1, 2]
                tagged = await call("plasmite_read", {"pool": "r", "tags": ["a"]})
                assert [m["seq"] for m in tagged["messages"]] == [1] and tagged["next_after_seq"] == 2
                assert len((await call("plasmite_read", {"pool": "r", "since": "1h"}))["messages"]) == 2
                assert (await call("plasmite_fetch", {"pool": "r", "seq": 2}))["message"]["data"] == {"n": 2}

                def append_later():
                    import time as _t

                    _t.sleep(0.5)
                    with Client(pool_dir) as local:
                        local.open_pool("r").append({"n": 3})

                waiter = asyncio.ensure_future(call("plasmite_wait", {"pool": "r", "timeout_ms": 20000}))
                await asyncio.to_thread(append_later)
                woke = await waiter
                assert [m["data"] for m in woke["messages"]] == [{"n": 3}] and woke["timed_out"] is False
            finally:
                dispatcher.close()

        asyncio.run(main())
