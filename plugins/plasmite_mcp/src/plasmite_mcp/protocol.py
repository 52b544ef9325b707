"""MCP over JSON-RPC 2.0, independent of the transport.

``Dispatcher.handle`` takes one decoded JSON-RPC message and returns the
response object, or None for notifications and client responses; the stdio
and HTTP transports only frame bytes around it, so both behave identically.
Tool failures are results with ``isError`` and a structured ``error_kind``
(the agent can react to them); protocol misuse (unknown method or tool,
malformed params) is a JSON-RPC error. Nothing a client sends can end the
server: every exception becomes one of the two.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import msgspec

from plasmite_core.admission import Slots
from plasmite_core.errors import BusyError, InternalError, PermissionDeniedError, PlasmiteError
from plasmite import validate_pool_name

from .schemas import BY_NAME, INSTRUCTIONS, TOOLS, Tool
from .tools import CALLS, ArgumentError, PoolTools

PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
LATEST_PROTOCOL_VERSION = PROTOCOL_VERSIONS[0]
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = -32700, -32600, -32601, -32602, -32603
SERVER_ERROR, RESOURCE_NOT_FOUND = -32000, -32002
WAIT_SLICE_MS = 500  # a cancelled wait frees its thread within this
RESOURCE_PREFIX = "plasmite:///pools/"
# Set by a transport that orders requests: the Event is set once a wait has its starting cursor.
WAIT_STARTED: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("wait_started", default=None)


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_response(id_: Any, code: int, message: str, data: dict | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": error}


def parse(raw: bytes | str) -> tuple[Any, dict | None]:
    """Decode one message: ``(message, None)`` or ``(None, error response)``.

    A JSON array (a JSON-RPC batch) is refused: MCP dropped batching.
    """
    try:
        message = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None, error_response(None, PARSE_ERROR, "parse error: the message is not valid JSON")
    if isinstance(message, list):
        return None, error_response(None, INVALID_REQUEST, "batches are not supported: send one JSON-RPC message")
    if not isinstance(message, dict):
        return None, error_response(None, INVALID_REQUEST, "a JSON-RPC message must be a JSON object")
    return message, None


def is_request(message: dict) -> bool:
    return "method" in message and "id" in message


def _error_data(tool: str | None, err: PlasmiteError) -> dict:
    data: dict[str, Any] = {"error_kind": err.kind.label, "message": err.message}
    if tool:
        data = {"tool": tool, **data}
    for key in ("hint", "path", "seq"):
        value = getattr(err, key, None)
        if value is not None:
            data[key] = value
    return data


def _failure(tool: str, err: PlasmiteError) -> dict:
    text = err.message + (f". {err.hint}" if err.hint else "")
    return {"content": [{"type": "text", "text": text}], "structuredContent": _error_data(tool, err), "isError": True}


def _argument_failure(tool: str, exc: ArgumentError) -> dict:
    text = f"Invalid `{exc.field}` for {tool}: {exc.detail}"
    structured = {"tool": tool, "error_kind": "Usage", "message": text, "field": exc.field, "detail": exc.detail}
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": True}


def _success(summary: str, structured: dict) -> dict:
    body = msgspec.json.encode(structured).decode()
    return {
        "content": [{"type": "text", "text": summary}, {"type": "text", "text": body}],
        "structuredContent": structured,
        "isError": False,
    }


class Dispatcher:
    """Routes MCP methods to ``PoolTools`` under an access mode and a wait budget.

    ``run_blocking(fn, *args)`` runs a blocking pool call off the loop (a
    server passes its bounded storage pool); waits sleep on threads of their
    own, at most ``wait_slots.capacity`` at once, and beyond that a wait is
    a Busy failure. A wait ends early (timed out) once ``stopping()``.
    """

    def __init__(
        self,
        tools: PoolTools,
        *,
        allows_read: bool = True,
        allows_write: bool = True,
        run_blocking: Callable[..., Awaitable[Any]] | None = None,
        wait_slots: Any = None,
        server_version: str = "0.1.0",
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.tools = tools
        self.allows_read = allows_read
        self.allows_write = allows_write
        self._run_blocking = run_blocking or asyncio.to_thread
        self.wait_slots = wait_slots if wait_slots is not None else Slots(16)
        self._wait_threads: ThreadPoolExecutor | None = None
        self.server_version = server_version
        self._stopping = stopping

    def allowed(self, tool: Tool) -> bool:
        return self.allows_write if tool.writes else self.allows_read

    def visible_tools(self) -> list[Tool]:
        return [t for t in TOOLS if self.allowed(t)]

    def close(self) -> None:
        if self._wait_threads is not None:
            self._wait_threads.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ messages

    async def handle(self, message: Any) -> dict | None:
        """The response to one decoded message (None: nothing to answer)."""
        if not isinstance(message, dict):
            return error_response(None, INVALID_REQUEST, "a JSON-RPC message must be a JSON object")
        has_id = "id" in message
        id_ = message.get("id")
        if has_id and (isinstance(id_, bool) or not isinstance(id_, (str, int))):
            return error_response(None, INVALID_REQUEST, "id must be a string or an integer")
        if message.get("jsonrpc") != "2.0":
            return error_response(id_ if has_id else None, INVALID_REQUEST, 'jsonrpc must be "2.0"')
        method = message.get("method")
        if method is None:
            if "result" in message or "error" in message:
                return None  # a client's response (this server sends no requests): nothing to answer
            return error_response(id_ if has_id else None, INVALID_REQUEST, "a request needs a method")
        if not isinstance(method, str):
            return error_response(id_ if has_id else None, INVALID_REQUEST, "method must be a string")
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            return error_response(id_ if has_id else None, INVALID_PARAMS, "params must be an object")
        if not has_id:
            return None  # notifications (initialized, cancelled, ...) need no answer
        try:
            result = await self._route(method, params or {})
        except RpcError as exc:
            return error_response(id_, exc.code, exc.message, exc.data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not end the session
            return error_response(id_, INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    async def _route(self, method: str, params: dict) -> dict:
        if method == "initialize":
            return self.initialize_result(params)
        if method == "ping":
            return {}
        if method == "tools/list":
            return {"tools": [t.to_dict() for t in self.visible_tools()]}
        if method == "tools/call":
            name = params.get("name")
            if not isinstance(name, str):
                raise RpcError(INVALID_PARAMS, "tools/call needs a string `name`")
            arguments = params.get("arguments")
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise RpcError(INVALID_PARAMS, "tools/call `arguments` must be an object")
            return await self.call_tool(name, arguments)
        if method == "resources/list":
            self._require_read()
            return {"resources": await self._blocking(self.tools.resource_list)}
        if method == "resources/templates/list":
            return {"resourceTemplates": []}
        if method == "resources/read":
            self._require_read()
            uri = params.get("uri")
            if not isinstance(uri, str):
                raise RpcError(INVALID_PARAMS, "resources/read needs a string `uri`")
            return await self.read_resource(uri)
        raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")

    def initialize_result(self, params: dict) -> dict:
        asked = params.get("protocolVersion")
        version = asked if asked in PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}, "resources": {"subscribe": False, "listChanged": False}},
            "serverInfo": {"name": "plasmite", "version": self.server_version},
            "instructions": INSTRUCTIONS,
        }

    # --------------------------------------------------------------- tools

    async def call_tool(self, name: str, arguments: dict) -> dict:
        tool = BY_NAME.get(name)
        if tool is None:
            raise RpcError(INVALID_PARAMS, f"unknown tool: {name}",
                           {"hint": "tools/list shows the tools this server offers"})
        if not self.allowed(tool):
            what = "write" if tool.writes else "read"
            return _failure(name, PermissionDeniedError(
                f"forbidden: this server's access mode disallows {what} operations",
                hint="the server operator sets the access mode (pls serve --access)",
            ))
        try:
            if name == "plasmite_wait":
                summary, structured = await self._wait(arguments)
            else:
                summary, structured = await self._blocking(CALLS[name], self.tools, arguments)
        except ArgumentError as exc:
            return _argument_failure(name, exc)
        except PlasmiteError as err:
            return _failure(name, err)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _failure(name, InternalError(f"internal error: {type(exc).__name__}: {exc}",
                                                hint="this is a bug in plasmite-mcp; please report it"))
        return _success(summary, structured)

    async def _blocking(self, fn: Callable, *args: Any) -> Any:
        return await self._run_blocking(fn, *args)

    async def _wait(self, arguments: dict) -> tuple[str, dict]:
        name, after_seq, count, timeout_ms, tags = self.tools.wait_args(arguments)
        if not self.wait_slots.take():
            raise BusyError("busy: too many concurrent waits and tails",
                            hint="retry shortly; the server operator can raise --max-tail-concurrency")
        try:
            deadline = time.monotonic() + timeout_ms / 1000.0
            cursor = await self._blocking(self.tools.wait_start, name, after_seq)
            started = WAIT_STARTED.get()
            if started is not None:
                started.set()
            fell_behind = False
            loop = asyncio.get_running_loop()
            while True:
                batch = await self._blocking(self.tools.wait_step, name, cursor, count, tags)
                fell_behind = fell_behind or batch["fell_behind"]
                batch["fell_behind"] = fell_behind
                if batch["next_after_seq"] is not None:
                    cursor = batch["next_after_seq"]
                remaining = deadline - time.monotonic()
                if batch["messages"] or remaining <= 0 or self._stopping():
                    batch["timed_out"] = not batch["messages"]
                    n = len(batch["messages"])
                    summary = (f"{n} new message(s) in {name!r}." if n
                               else f"No new message in {name!r} before the timeout.")
                    return summary, batch
                slice_ms = max(1, int(min(remaining * 1000.0, WAIT_SLICE_MS)))
                await loop.run_in_executor(self._waiters(), self.tools.wait_for_append, name, cursor, slice_ms)
        finally:
            self.wait_slots.give()

    def _waiters(self) -> ThreadPoolExecutor:
        if self._wait_threads is None:
            capacity = max(1, int(getattr(self.wait_slots, "capacity", 16)))
            self._wait_threads = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="plasmite-mcp-wait")
        return self._wait_threads

    # ----------------------------------------------------------- resources

    def _require_read(self) -> None:
        if not self.allows_read:
            raise RpcError(SERVER_ERROR, "forbidden: this server's access mode disallows read operations",
                           {"error_kind": "Permission", "hint": "the server operator sets the access mode"})

    async def read_resource(self, uri: str) -> dict:
        name = uri[len(RESOURCE_PREFIX):] if uri.startswith(RESOURCE_PREFIX) else ""
        if not name or "/" in name or "?" in name or "#" in name:
            raise RpcError(INVALID_PARAMS, f"unknown resource uri: {uri}",
                           {"hint": "pool resources are plasmite:///pools/NAME (see resources/list)"})
        try:
            validate_pool_name(name)
            batch = await self._blocking(self.tools.resource_read, name)
        except PlasmiteError as err:
            code = RESOURCE_NOT_FOUND if err.kind.label == "NotFound" else SERVER_ERROR
            raise RpcError(code, err.message, _error_data(None, err)) from None
        text = msgspec.json.encode(batch).decode()
        return {"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]}
