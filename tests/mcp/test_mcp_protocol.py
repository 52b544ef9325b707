"""The MCP dispatcher in process, over a local pool directory: cursor and
retention rules of read and wait, access filtering, the wait budget.
(The transports are tested end to end in test_mcp_stdio.py and test_mcp_http.py.)"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from plasmite import Client
from plasmite_mcp.protocol import Dispatcher, Slots
from plasmite_mcp.schemas import TOOLS
from plasmite_mcp.tools import PoolTools

pytestmark = pytest.mark.timeout(60)


def _run(dispatcher: Dispatcher, name: str, arguments: dict) -> dict:
    async def go():
        return await dispatcher.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                        "params": {"name": name, "arguments": arguments}})

    return asyncio.run(go())["result"]


@pytest.fixture
def dispatcher(pool_dir):
    d = Dispatcher(PoolTools(Client(pool_dir)))
    yield d
    d.close()


def test_read_reports_a_cursor_the_ring_overwrote(pool_dir, dispatcher):
    with Client(pool_dir) as client:
        pool = client.create_pool("small", 64 * 1024)
        while (pool.bounds()[0] or 1) < 50:
            pool.append({"pad": "x" * 200})
        oldest, newest = pool.bounds()
        pool.close()
    read = _run(dispatcher, "plasmite_read", {"pool": "small", "after_seq": 3, "count": 5})["structuredContent"]
    assert read["fell_behind"] is True and read["oldest_available_seq"] == oldest
    assert [m["seq"] for m in read["messages"]] == list(range(oldest, oldest + 5))
    assert read["next_after_seq"] == oldest + 4
    waited = _run(dispatcher, "plasmite_wait", {"pool": "small", "after_seq": 3, "count": 1, "timeout_ms": 0})
    assert waited["structuredContent"]["fell_behind"] is True
    caught_up = _run(dispatcher, "plasmite_read", {"pool": "small", "after_seq": newest})["structuredContent"]
    assert caught_up["fell_behind"] is False and caught_up["messages"] == [] and caught_up["next_after_seq"] == newest


def test_cursors_move_past_filtered_messages(pool_dir, dispatcher):
    with Client(pool_dir) as client:
        pool = client.create_pool("mixed")
        pool.append({"n": 1}, ["keep"])
        for n in range(2, 6):
            pool.append({"n": n}, ["skip"])
        pool.close()
    read = _run(dispatcher, "plasmite_read", {"pool": "mixed", "after_seq": 1, "tags": ["keep"]})["structuredContent"]
    assert read["messages"] == [] and read["next_after_seq"] == 5 and read["last_returned_seq"] is None
    waited = _run(dispatcher, "plasmite_wait", {"pool": "mixed", "after_seq": 1, "tags": ["keep"], "timeout_ms": 100})
    assert waited["structuredContent"]["timed_out"] is True and waited["structuredContent"]["next_after_seq"] == 5


def test_wait_wakes_on_an_append_from_another_process_thread(pool_dir, dispatcher):
    with Client(pool_dir) as client:
        client.create_pool("live").close()

    def later():
        time.sleep(0.5)
        with Client(pool_dir) as client:
            client.open_pool("live").append({"hello": 1}, ["x"])

    threading.Thread(target=later).start()
    started = time.monotonic()
    result = _run(dispatcher, "plasmite_wait", {"pool": "live", "tags": ["x"], "timeout_ms": 30000})
    assert result["structuredContent"]["messages"][0]["data"] == {"hello": 1}
    assert time.monotonic() - started < 20


def test_access_mode_filters_the_tool_list(pool_dir):
    writers = {t.name for t in TOOLS if t.writes}
    read_only = Dispatcher(PoolTools(Client(pool_dir)), allows_write=False)
    write_only = Dispatcher(PoolTools(Client(pool_dir)), allows_read=False)
    assert writers == {"plasmite_pool_create", "plasmite_pool_delete", "plasmite_feed"}
    assert not {t.name for t in read_only.visible_tools()} & writers
    assert {t.name for t in write_only.visible_tools()} == writers
    denied = _run(read_only, "plasmite_pool_delete", {"pool": "x"})
    assert denied["isError"] and denied["structuredContent"]["error_kind"] == "Permission"


def test_waits_beyond_the_budget_are_busy(pool_dir):
    with Client(pool_dir) as client:
        client.create_pool("q").close()
    slots = Slots(1)
    dispatcher = Dispatcher(PoolTools(Client(pool_dir)), wait_slots=slots)

    async def go():
        first = asyncio.ensure_future(dispatcher.call_tool("plasmite_wait", {"pool": "q", "timeout_ms": 30000}))
        while slots.active == 0:
            await asyncio.sleep(0.01)
        second = await dispatcher.call_tool("plasmite_wait", {"pool": "q", "timeout_ms": 0})
        first.cancel()  # what a disconnect does: the slot is given back
        with pytest.raises(asyncio.CancelledError):
            await first
        third = await dispatcher.call_tool("plasmite_wait", {"pool": "q", "timeout_ms": 0})
        return second, third

    try:
        second, third = asyncio.run(go())
    finally:
        dispatcher.close()
    assert second["isError"] and second["structuredContent"]["error_kind"] == "Busy"
    assert not third["isError"] and slots.active == 0
