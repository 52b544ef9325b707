"""``/mcp`` on ``pls serve``: MCP's streamable HTTP transport, stateless profile.

A POST carries one JSON-RPC message. A request is answered with one JSON-RPC
response (``application/json``, never an SSE stream); a notification or a
client response gets 202 with no body. There are no sessions, so GET (a
server-to-client stream) and DELETE (end a session) get 405. The serving
app has already checked the bearer token; this endpoint adds the checks MCP
asks of every server: the ``Origin`` of a browser request must be the
server's own or an allowed CORS origin (DNS rebinding), and a
``MCP-Protocol-Version`` header must name a version spoken here.

Tools run against the server's own pool client, in its bounded storage
workers, and ``plasmite_wait`` takes a slot of the server's tail budget
(``--max-tail-concurrency``); when the client disconnects, its wait ends.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import msgspec

from plasmite_core.errors import PermissionDeniedError, PlasmiteError, UsageError

from .protocol import PROTOCOL_VERSIONS, Dispatcher, is_request, parse
from .tools import PoolTools

_encode = msgspec.json.encode
_PLASMITE_VERSION = (b"plasmite-version", b"0")


class McpEndpoint:
    """ASGI callable serving MCP at the mount point, for one ``PlasmiteApp``."""

    def __init__(self, server) -> None:
        from . import __version__

        self.server = server
        config = server.config
        self.config = config
        self.dispatcher = Dispatcher(
            PoolTools(server.client, max_pool_bytes=getattr(config, "max_pool_bytes", 0) or 0),
            allows_read=config.allows_read,
            allows_write=config.allows_write,
            run_blocking=server.run_storage,
            wait_slots=server.tail_admission,
            server_version=__version__,
            stopping=lambda: server.closing,
        )

    def close(self) -> None:
        self.dispatcher.close()

    async def __call__(self, scope, receive, send) -> None:
        headers = scope["headers"]
        cors = self._cors(headers)
        try:
            if scope["method"] != "POST":
                await _send(send, 405, _error_body(UsageError(
                    f"method {scope['method']} not allowed on /mcp",
                    hint="POST one JSON-RPC message; this server offers no SSE stream and no sessions",
                )), cors + [(b"allow", b"POST")])
                return
            self._check_origin(headers)
            self._check_version(headers)
            ctype = _header(headers, b"content-type")
            if ctype is None or not ctype.split(b";")[0].strip().lower() == b"application/json":
                await _send(send, 415, _error_body(UsageError(
                    "MCP requests must be JSON", hint="send Content-Type: application/json")), cors)
                return
            body = await _read_body(receive, self.config.max_body_bytes)
        except _Reject as exc:
            await _send(send, exc.status, _error_body(exc.error), cors)
            return
        message, error = parse(body)
        if error is not None:
            await _send(send, 400, _encode(error), cors)
            return
        if not is_request(message):
            response = await self.dispatcher.handle(message)
            if response is None:
                await _send(send, 202, b"", cors)
            else:
                await _send(send, 400, _encode(response), cors)
            return
        response = await _until_disconnect(self.dispatcher.handle(message), receive)
        if response is None:
            return  # the client went away: nobody to answer
        await _send(send, 200, _encode(response), cors)

    def _cors(self, headers) -> list:
        origin = _header(headers, b"origin")
        if origin is not None and origin.decode("latin-1") in self.config.cors_origins:
            return [(b"access-control-allow-origin", origin), (b"vary", b"origin")]
        return []

    def _check_origin(self, headers) -> None:
        """A browser's Origin must be this server's own, or one the operator allowed."""
        raw = _header(headers, b"origin")
        if raw is None:
            return
        origin = raw.decode("latin-1")
        if origin in self.config.cors_origins:
            return
        host = _header(headers, b"host")
        parts = urlsplit(origin)
        same_host = host is not None and parts.netloc.lower() == host.decode("latin-1").lower()
        if same_host and parts.scheme in ("http", "https"):
            return
        raise _Reject(403, PermissionDeniedError(
            f"origin not allowed on /mcp: {origin}",
            hint="the server operator can allow a browser origin with --cors-origin",
        ))

    def _check_version(self, headers) -> None:
        raw = _header(headers, b"mcp-protocol-version")
        if raw is None:
            return
        if raw.decode("latin-1").strip() not in PROTOCOL_VERSIONS:
            raise _Reject(400, UsageError(
                f"unsupported MCP-Protocol-Version: {raw.decode('latin-1')}",
                hint=f"this server speaks {', '.join(PROTOCOL_VERSIONS)}",
            ))


class _Reject(Exception):
    def __init__(self, status: int, error: PlasmiteError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


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


async def _read_body(receive, limit: int) -> bytes:
    chunks = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Reject(400, UsageError("client disconnected"))
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _Reject(413, UsageError(f"request body exceeds the server limit of {limit} bytes",
                                          hint="send a smaller message; the operator sets --max-body-bytes"))
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _header(headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _error_body(error: PlasmiteError) -> bytes:
    return _encode({"error": error.to_dict()})


async def _send(send, status: int, body: bytes, extra: list) -> None:
    headers = [_PLASMITE_VERSION] + extra
    if body:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except (OSError, RuntimeError):
        pass  # the client has gone
