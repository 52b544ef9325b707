"""MCP over stdio: one JSON-RPC message per line in, one per line out.

Requests run one after another, in the order they arrive, except that
``plasmite_wait``, once it has taken its starting point, goes on beside
later requests (a long wait does not hold up a ``ping`` or a feed).
Answers are written whole, one line each, as they are ready.
``notifications/cancelled`` cancels the named request. End of input ends
the session: pending waits are cancelled (the client has gone), other
pending requests are answered, and the process exits 0. Only JSON-RPC goes
to stdout; nothing else is printed.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from typing import Any, BinaryIO

import msgspec

from .protocol import WAIT_STARTED, Dispatcher, parse

MAX_LINE_BYTES = 64 * 1024 * 1024


class StdioSession:
    def __init__(self, dispatcher: Dispatcher, out: BinaryIO) -> None:
        self.dispatcher = dispatcher
        self.out = out
        self.pending: dict[Any, asyncio.Task] = {}
        self.tasks: set[asyncio.Task] = set()
        self.waits: set[asyncio.Task] = set()
        self.last: asyncio.Task | None = None  # the previous in-order request

    def write(self, message: dict) -> None:
        try:
            self.out.write(msgspec.json.encode(message) + b"\n")
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the client has gone; its end of input ends the session

    def on_line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        message, error = parse(line)
        if error is not None:
            self.write(error)
            return
        if message.get("method") == "notifications/cancelled" and "id" not in message:
            params = message.get("params")
            task = self.pending.get(params.get("requestId")) if isinstance(params, dict) else None
            if task is not None:
                task.cancel()
            return
        params = message.get("params")
        is_wait = (message.get("method") == "tools/call" and isinstance(params, dict)
                   and params.get("name") == "plasmite_wait")
        if is_wait:
            # The wait takes its starting point in order, then goes on beside later requests.
            started = asyncio.Event()
            context = contextvars.copy_context()
            context.run(WAIT_STARTED.set, started)
            task = asyncio.get_running_loop().create_task(self._answer(message, self.last), context=context)
            self.waits.add(task)
            task.add_done_callback(self.waits.discard)
            self.last = asyncio.ensure_future(_started_or_done(started, task))
        else:
            task = asyncio.ensure_future(self._answer(message, self.last))
            self.last = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if "id" in message and isinstance(message.get("id"), (str, int)):
            self.pending[message["id"]] = task

    async def _answer(self, message: dict, after: asyncio.Task | None) -> None:
        try:
            if after is not None:
                await asyncio.wait({after})
            response = await self.dispatcher.handle(message)
        except asyncio.CancelledError:
            return  # the client cancelled it (or left): MCP sends no answer then
        finally:
            id_ = message.get("id")
            if isinstance(id_, (str, int)) and self.pending.get(id_) is asyncio.current_task():
                del self.pending[id_]
        if response is not None:
            self.write(response)

    async def close(self) -> None:
        for task in list(self.waits):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.dispatcher.close()


async def serve_stdio(dispatcher: Dispatcher, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Serve one session on the given binary streams (default: the process's stdio)."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(stdin.fileno()), "rb"))
    session = StdioSession(dispatcher, stdout)
    try:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                session.on_line(exc.partial)  # a last line without a newline
                break
            except asyncio.LimitOverrunError:
                session.write({"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32600, "message": f"message longer than {MAX_LINE_BYTES} bytes"}})
                await _skip_line(reader)
                continue
            session.on_line(line)
    finally:
        await session.close()


async def _started_or_done(started: asyncio.Event, task: asyncio.Task) -> None:
    waiter = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


async def _skip_line(reader: asyncio.StreamReader) -> None:
    """Drop the rest of an over-long line."""
    while True:
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return
