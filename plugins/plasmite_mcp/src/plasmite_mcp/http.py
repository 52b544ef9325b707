"""``/mcp`` on ``pls serve``: MCP's streamable HTTP transport, stateless profile.

A POST carries one JSON-RPC message. A request is answered with one JSON-RPC
response (``application/json``, never an SSE stream); a notification or a
client response gets 202 with no body. There are no sessions, so GET (a
server-to-client stream) and DELETE (end a session) get 405. An
``MCP-Protocol-Version`` header must name a version spoken here (400).

The serve app mounts this endpoint (``PlasmiteApp.mount``) behind its own
guards: Host (DNS rebinding), Origin of state changes, the bearer token and
the access mode's side; refusals and body limits use its error envelope.
Tools run against the server's pool client in its bounded storage workers,
and ``plasmite_wait`` takes a slot of the server's tail budget
(``--max-tail-concurrency``); when the client disconnects, its wait ends.
"""

from __future__ import annotations

import asyncio

import msgspec

from plasmite_core.errors import NotFoundError, UsageError

from .protocol import PROTOCOL_VERSIONS, Dispatcher, is_request, parse
from .tools import PoolTools

_encode = msgspec.json.encode


class McpEndpoint:
    """ASGI callable serving MCP at its mount point, for one ``PlasmiteApp``."""

    def __init__(self, server) -> None:
        self.server = server
        self._dispatcher: Dispatcher | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:  # lazily: the pool directory is touched on first use only
            from . import __version__

            config = self.server.config
            self._dispatcher = Dispatcher(
                PoolTools(self.server.client, max_pool_bytes=config.max_pool_bytes),
                allows_read=config.allows_read,
                allows_write=config.allows_write,
                run_blocking=self._storage,
                wait_slots=self.server.tail_admission,
                server_version=__version__,
                stopping=lambda: self.server.closing,
            )
        return self._dispatcher

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()

    async def _storage(self, fn, *args):
        """The server's bounded storage workers; a saturated pool is a Busy tool failure."""
        from plasmite_serve.wire import HttpError

        try:
            return await self.server.storage(fn, *args)
        except HttpError as exc:
            raise exc.error from None

    async def __call__(self, scope, receive, send) -> None:
        # Refusals raise; the serve app answers them with its error envelope and CORS headers.
        from plasmite_serve.security import cors_headers, require_json
        from plasmite_serve.wire import HttpError, header, read_body, segments, send_json

        if segments(scope):
            raise HttpError(NotFoundError("no such endpoint under /mcp", hint="POST to /mcp itself"), 404)
        if scope["method"] != "POST":
            raise HttpError(UsageError(
                f"method {scope['method']} not allowed on /mcp",
                hint="POST one JSON-RPC message; this server offers no SSE stream and no sessions",
            ), 405, [(b"allow", b"POST")])
        version = header(scope, b"mcp-protocol-version")
        if version is not None and version.decode("latin-1").strip() not in PROTOCOL_VERSIONS:
            raise HttpError(UsageError(
                f"unsupported MCP-Protocol-Version: {version.decode('latin-1')}",
                hint=f"this server speaks {', '.join(PROTOCOL_VERSIONS)}",
            ), 400)
        require_json(header(scope, b"content-type"))
        body = await read_body(scope, receive, self.server.config.max_body_bytes)
        origin = header(scope, b"origin")
        cors = cors_headers(set(self.server.config.cors_origins), None if origin is None else origin.decode("latin-1"))

        message, error = parse(body)
        if error is not None:
            await send_json(send, _encode(error), 400, cors)
            return
        if not is_request(message):
            response = await self.dispatcher.handle(message)
            if response is not None:
                await send_json(send, _encode(response), 400, cors)
                return
            await send({"type": "http.response.start", "status": 202,
                        "headers": [(b"content-length", b"0"), (b"plasmite-version", b"0")] + cors})
            await send({"type": "http.response.body", "body": b""})
            return
        response = await _until_disconnect(self.dispatcher.handle(message), receive)
        if response is not None:  # None: the client went away, nobody to answer
            await send_json(send, _encode(response), 200, cors)


async def _until_disconnect(work, receive):
    """Run ``work``; cancel it and return None if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return None
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _disconnected(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
