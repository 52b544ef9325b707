"""Shared parts of the MCP tests: sessions of the official MCP SDK client on
either transport, and one scenario that calls every tool and checks every
structured result against the tool's advertised output schema."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("mcp.client.session")  # a submodule: without the SDK, "mcp" would be tests/mcp/
import httpx2  # noqa: E402  (the SDK's HTTP client)
import jsonschema  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

PY = sys.executable
WRITE_TOOLS = {"plasmite_pool_create", "plasmite_pool_delete", "plasmite_feed"}
READ_TOOLS = {"plasmite_pool_list", "plasmite_pool_info", "plasmite_fetch", "plasmite_read", "plasmite_wait"}


@asynccontextmanager
async def stdio_session(pool_dir: Path):
    params = StdioServerParameters(command=PY, args=["-m", "plasmite_cli", "mcp", "--dir", str(pool_dir)])
    async with stdio_client(params) as streams:
        async with ClientSession(streams[0], streams[1], read_timeout_seconds=60) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1], read_timeout_seconds=60) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, schemas: dict, name: str, arguments: dict, *, error: str | None = None) -> dict:
    """Call a tool; check isError, the error kind and the output schema; return structuredContent."""
    result = await session.call_tool(name, arguments)
    structured = result.structured_content
    assert structured is not None, result
    jsonschema.validate(structured, schemas[name])
    if error is None:
        assert not result.is_error, structured
    else:
        assert result.is_error, structured
        assert structured["error_kind"] == error, structured
        assert structured["tool"] == name
        assert result.content and result.content[0].text
    return structured


async def output_schemas(session: ClientSession) -> dict:
    tools = (await session.list_tools()).tools
    return {t.name: t.output_schema for t in tools}


async def exercise_every_tool(session: ClientSession) -> None:
    """Every tool, its main options and its usual failures, on a fresh pool directory."""
    listed = (await session.list_tools()).tools
    assert {t.name for t in listed} == WRITE_TOOLS | READ_TOOLS
    for tool in listed:
        assert tool.input_schema["additionalProperties"] is False
        assert tool.output_schema and tool.annotations is not None
    assert next(t for t in listed if t.name == "plasmite_pool_delete").annotations.destructive_hint is True
    assert next(t for t in listed if t.name == "plasmite_read").annotations.read_only_hint is True
    s = {t.name: t.output_schema for t in listed}

    assert (await call(session, s, "plasmite_pool_list", {}))["pools"] == []
    created = await call(session, s, "plasmite_pool_create", {"name": "tasks", "size": 256 * 1024})
    assert created["pool"]["name"] == "tasks" and created["pool"]["file_size"] == 256 * 1024
    again = await call(session, s, "plasmite_pool_create", {"name": "tasks"}, error="AlreadyExists")
    assert "unchanged" in again["hint"]

    first = await call(session, s, "plasmite_feed", {"pool": "tasks", "data": {"task": "build"}, "tags": [" todo "]})
    assert first["message"]["seq"] == 1 and first["message"]["meta"]["tags"] == ["todo"]
    await call(session, s, "plasmite_feed", {"pool": "tasks", "data": {"text": "plain text"}})
    await call(session, s, "plasmite_feed", {"pool": "tasks", "data": {"list": [1, 2]}, "tags": ["todo", "urgent"]})
    made = await call(session, s, "plasmite_feed", {"pool": "notes", "data": {"n": 1}, "create": True})
    assert made["message"]["seq"] == 1
    missing = await call(session, s, "plasmite_feed", {"pool": "nope", "data": {}}, error="NotFound")
    assert "create" in missing["hint"]

    names = [p["name"] for p in (await call(session, s, "plasmite_pool_list", {}))["pools"]]
    assert names == ["notes", "tasks"]
    info = await call(session, s, "plasmite_pool_info", {"pool": "tasks"})
    assert info["pool"]["bounds"] == {"oldest": 1, "newest": 3}

    fetched = await call(session, s, "plasmite_fetch", {"pool": "tasks", "seq": 2})
    assert fetched["message"]["data"] == {"text": "plain text"}
    gone = await call(session, s, "plasmite_fetch", {"pool": "tasks", "seq": 99}, error="NotFound")
    assert gone["seq"] == 99

    read = await call(session, s, "plasmite_read", {"pool": "tasks"})
    assert [m["seq"] for m in read["messages"]] == [1, 2, 3]
    assert read["next_after_seq"] == 3 and read["last_returned_seq"] == 3 and read["fell_behind"] is False
    newest = await call(session, s, "plasmite_read", {"pool": "tasks", "count": 2})
    assert [m["seq"] for m in newest["messages"]] == [2, 3]
    tagged = await call(session, s, "plasmite_read", {"pool": "tasks", "tags": ["todo", "urgent"]})
    assert [m["seq"] for m in tagged["messages"]] == [3]
    page = await call(session, s, "plasmite_read", {"pool": "tasks", "after_seq": 1, "count": 1})
    assert [m["seq"] for m in page["messages"]] == [2] and page["next_after_seq"] == 2
    recent = await call(session, s, "plasmite_read", {"pool": "tasks", "since": "1h"})
    assert len(recent["messages"]) == 3
    future = await call(session, s, "plasmite_read", {"pool": "tasks", "since": "2999-01-01T00:00:00Z"})
    assert future["messages"] == [] and future["next_after_seq"] == 3
    await call(session, s, "plasmite_read", {"pool": "tasks", "since": "yesterday"}, error="Usage")
    await call(session, s, "plasmite_read", {"pool": "tasks", "count": 0}, error="Usage")
    where = await call(session, s, "plasmite_read", {"pool": "tasks", "where": ".data"}, error="Usage")
    assert where["field"] == "where"

    # wait: history after a cursor comes back at once; nothing new times out.
    waited = await call(session, s, "plasmite_wait", {"pool": "tasks", "after_seq": 1, "timeout_ms": 5000})
    assert [m["seq"] for m in waited["messages"]] == [2, 3] and waited["timed_out"] is False
    idle = await call(session, s, "plasmite_wait", {"pool": "tasks", "timeout_ms": 200})
    assert idle["messages"] == [] and idle["timed_out"] is True and idle["next_after_seq"] == 3
    huge = await call(session, s, "plasmite_wait", {"pool": "tasks", "timeout_ms": 10**12}, error="Usage")
    assert huge["field"] == "timeout_ms"

    # arguments: unknown, wrong type, path-like pool names
    unknown = await call(session, s, "plasmite_pool_info", {"pool": "tasks", "verbose": True}, error="Usage")
    assert unknown["field"] == "verbose"
    await call(session, s, "plasmite_fetch", {"pool": "tasks", "seq": "2"}, error="Usage")
    await call(session, s, "plasmite_feed", {"pool": "tasks", "data": {}, "tags": [""]}, error="Usage")
    scalar = await call(session, s, "plasmite_feed", {"pool": "tasks", "data": [1, 2]}, error="Usage")
    assert scalar["field"] == "data"
    await call(session, s, "plasmite_pool_info", {"pool": "../etc/passwd"}, error="Usage")
    await call(session, s, "plasmite_feed", {"pool": "tasks"}, error="Usage")

    resources = (await session.list_resources()).resources
    assert [str(r.uri) for r in resources] == ["plasmite:///pools/notes", "plasmite:///pools/tasks"]
    content = (await session.read_resource("plasmite:///pools/tasks")).contents[0]
    assert content.mime_type == "application/json"
    assert '"seq":3' in content.text

    deleted = await call(session, s, "plasmite_pool_delete", {"pool": "notes"})
    assert deleted == {"deleted": {"pool": "notes"}}
    await call(session, s, "plasmite_pool_delete", {"pool": "notes"}, error="NotFound")
    await call(session, s, "plasmite_pool_info", {"pool": "notes"}, error="NotFound")
