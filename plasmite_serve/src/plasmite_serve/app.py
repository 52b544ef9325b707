"""The ASGI application speaking Plasmite remote protocol v0: resources, route table, dispatch.

Written against bare ASGI (no framework) because the protocol is small and the
hot paths are byte-level: an append or a get on an already-open pool runs on
the event loop in a few microseconds (no thread hop, which would halve the
request rate), and a tail forwards the core's raw JSON envelopes in batches.
The pieces, by concern:

- ``routing.py``: the declarative table below (method, pattern, access rule,
  handler, body type) and its matcher;
- ``security.py``: Host, Origin and Content-Type guards, tokens, access
  modes, CORS; every request passes them before any side effect;
- ``handlers.py``: the JSON pool endpoints; ``lite3_routes.py``: the Lite3
  byte endpoints; ``tail.py``: the tail loop with one framer per format
  (JSON Lines, SSE, Lite3 frames); ``ui.py``: the web page;
- ``wire.py``: responses, bodies and parameters; ``locking.py``: taking a
  pool's lock without blocking the loop.

This module owns what the handlers share: one open handle per pool
(reference counted, so 64 tails of a pool map its file once), a bounded
worker pool for operations that can block for longer (create/open/delete/
list/info, flushed appends) and the tail budget. Both budgets are admission
limits: beyond them the server answers Busy/423 at once instead of queueing.

Use it alone (``pls serve`` runs it on uvicorn), mount it, or mount other ASGI
apps into it (:meth:`PlasmiteApp.mount`)::

    from plasmite_serve import create_app
    app = create_app(pool_dir="/srv/pools", token="s3cret", access="read-only")
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from plasmite_core.admission import Slots
from plasmite_core.errors import BusyError, NotFoundError, PlasmiteError

from . import handlers, lite3_routes, tail, ui
from ._uvicorn import effective_max_connections
from .config import ResolvedConfig, ServeConfig, resolve
from .routing import PUBLIC, READ, WRITE, Request, Route, Router
from .security import (
    HostPolicy,
    check_access,
    check_host,
    check_origin,
    check_token,
    cors_headers,
    preflight,
    require_json,
    require_type,
)
from .wire import (
    HttpError,
    as_plasmite_error,
    error_envelope,
    header,
    json_encode,
    parse_uint,
    pool_name,
    read_body,
    segments,
    send_error,
    send_json,
)

POOL_CACHE_SIZE = 256
JSON = "json"


async def _health(app, req) -> None:
    await send_json(req.send, b'{"ok":true}', 200, req.cors)


async def _openapi(app, req) -> None:
    await send_json(req.send, app.openapi, 200, req.cors)


ROUTES = [
    Route("GET", "/v0/pools", READ, handlers.list_pools),
    Route("POST", "/v0/pools", WRITE, handlers.create_pool, body=JSON),
    Route("POST", "/v0/pools/open", READ, handlers.open_pool, body=JSON),
    Route("DELETE", "/v0/pools/{pool}", WRITE, handlers.delete_pool),
    Route("GET", "/v0/pools/{pool}/info", READ, handlers.pool_info),
    Route("POST", "/v0/pools/{pool}/append", WRITE, handlers.append, body=JSON),
    Route("GET", "/v0/pools/{pool}/messages/{seq}", READ, handlers.get),
    Route("GET", "/v0/pools/{pool}/tail", READ, tail.tail_jsonl),
    Route("POST", "/v0/pools/{pool}/append_lite3", WRITE, lite3_routes.append_lite3, body=lite3_routes.LITE3_TYPE),
    Route("GET", "/v0/pools/{pool}/messages/{seq}/lite3", READ, lite3_routes.get_lite3),
    Route("GET", "/v0/pools/{pool}/tail_lite3", READ, tail.tail_lite3),
    Route("GET", "/v0/ui/pools", READ, handlers.list_pools),
    Route("GET", "/v0/ui/pools/{pool}/info", READ, handlers.pool_info),
    Route("GET", "/v0/ui/pools/{pool}/events", READ, tail.tail_sse),
    Route("GET", "/healthz", PUBLIC, _health, head=True),
    Route("GET", "/openapi.json", PUBLIC, _openapi, head=True),
    Route("GET", "/ui", PUBLIC, ui.page, head=True),
    Route("GET", "/ui/pools/{page}", PUBLIC, ui.page, head=True),  # the page finds the pool in its URL
    Route("GET", "/", PUBLIC, ui.to_ui, head=True),
]

# Path parameters are validated after the access check, before the body is read.
_PARAMS: dict[str, Callable[[str], Any]] = {
    "pool": pool_name,
    "seq": lambda value: parse_uint("seq", value),
}
_LITE3_HINT = "send Content-Type: application/x-plasmite-lite3 (or POST JSON to /append)"


class _PoolHandle:
    __slots__ = ("pool", "dev", "ino", "refs", "evicted")

    def __init__(self, pool, dev: int, ino: int) -> None:
        self.pool = pool
        self.dev = dev
        self.ino = ino
        self.refs = 0  # tails using it
        self.evicted = False


class PlasmiteApp:
    """ASGI callable. Build it with :func:`create_app`."""

    def __init__(self, config: ResolvedConfig) -> None:
        self.config = config
        self.pool_dir = Path(config.pool_dir)
        self._token = config.token.encode() if config.token else None
        self._cors = set(config.cors_origins)
        self._hosts = HostPolicy(config.host, config.allowed_hosts)
        self._router = Router(ROUTES)
        self._mounts: dict[str, tuple[Any, str]] = {}
        # Each cached pool holds a descriptor: leave most of the limit to connections.
        self._pool_cache_size = min(POOL_CACHE_SIZE, max(16, effective_max_connections(1 << 20) // 2))
        self._pools: OrderedDict[str, _PoolHandle] = OrderedDict()
        from .store import open_store

        self.store = open_store(config)  # a pool directory, or --backend's server
        self._storage_pool: ThreadPoolExecutor | None = None
        self._storage_admission = Slots(config.max_tail_concurrency)
        self.tail_admission = Slots(config.max_tail_concurrency)
        self.closing = False
        self.ui = ui.load_ui()
        from .openapi import openapi_document

        self.openapi = json_encode(
            openapi_document(
                max_tail_timeout_ms=config.max_tail_timeout_ms,
                max_pool_bytes=config.max_pool_bytes or None,
                connection_limits={
                    "idle_timeout_ms": config.idle_timeout_ms,
                    "head_timeout_ms": config.head_timeout_ms,
                    "body_timeout_ms": config.body_timeout_ms,
                    "max_connections": effective_max_connections(config.max_connections),
                    "lock_timeout_ms": config.lock_timeout_ms,
                },
            )
        )
        self._mount_plugin_routes()

    def _mount_plugin_routes(self) -> None:
        """Mount what plugins serve (``register_serve_routes``: plasmite-mcp's ``/mcp``).

        Such an endpoint checks each of its operations against the access mode
        itself (an MCP server lists the tools the mode allows), so it is mounted
        behind the token and the side of the mode this server allows. A plugin
        that fails to build its endpoint loses the route, not the server.
        """
        from plasmite_core import plugins

        try:
            factories = plugins.serve_routes()
        except Exception:
            return
        for name, factory in factories.items():
            try:
                self.mount(name, factory(self), READ if self.config.allows_read else WRITE)
            except Exception:
                pass

    def mount(self, prefix: str, asgi_app, access: str = READ) -> None:
        """Serve ``/PREFIX/...`` with another ASGI app (for example an MCP endpoint at ``/mcp``).

        Its requests pass the same guards first: Host, Origin (state changes),
        the token unless ``access`` is ``"public"``, and ``--access`` for
        ``"read"`` or ``"write"``. The app sees ``root_path`` extended by the
        prefix; its own routes, methods and bodies are its business.
        """
        name = prefix.strip("/")
        if not name or "/" in name or name in ("v0", "ui", "healthz", "openapi.json"):
            raise ValueError(f"cannot mount at {prefix!r}: one path segment, not a built-in one")
        if access not in (PUBLIC, READ, WRITE):
            raise ValueError(f"access must be {PUBLIC!r}, {READ!r} or {WRITE!r}")
        self._mounts[name] = (asgi_app, access)

    # ---- resources (lazy: a mounted app may never see lifespan events)

    @property
    def client(self):
        return self.store.client

    def _storage_executor(self) -> ThreadPoolExecutor:
        if self._storage_pool is None:
            self._storage_pool = ThreadPoolExecutor(
                max_workers=min(16, self.config.max_tail_concurrency), thread_name_prefix="plasmite-storage"
            )
        return self._storage_pool

    def begin_shutdown(self) -> None:
        """End open tails cleanly (each within one read slice); new requests are still served."""
        self.closing = True

    def close(self) -> None:
        """Stop tails and release pools, threads and file handles."""
        self.closing = True
        for handle in self._pools.values():
            try:
                handle.pool.close()
            except Exception:
                pass
        self._pools.clear()
        for asgi_app, _access in self._mounts.values():
            close = getattr(asgi_app, "close", None)
            if close is not None:
                close()
        if self._storage_pool is not None:
            self._storage_pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.store.close()
        except Exception:
            pass

    async def storage(self, fn: Callable, *args) -> Any:
        """Run ``fn`` in the bounded storage workers; Busy/423 at once when they are all taken."""
        if not self._storage_admission.take():
            raise HttpError(
                BusyError("server storage workers are saturated", hint="retry after in-flight requests complete")
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._storage_executor(), fn, *args)
        finally:
            self._storage_admission.give()

    def pool_path(self, name: str) -> Path:
        return self.pool_dir / f"{name}.plasmite"

    def handle(self, name: str) -> _PoolHandle:
        """The shared open handle for ``name`` (event loop only).

        One mapping per pool serves every append, get and tail of this
        process. A handle is reopened when the file was replaced, and closed
        once it is both out of the cache and no longer used by a tail.
        """
        try:
            dev, ino = self.store.identity(name)
        except NotFoundError:
            self.evict(name)
            raise
        handle = self._pools.get(name)
        if handle is not None and handle.dev == dev and handle.ino == ino:
            self._pools.move_to_end(name)
            return handle
        self.evict(name)
        pool = self.store.open(name)
        handle = self._pools[name] = _PoolHandle(pool, dev, ino)
        while len(self._pools) > self._pool_cache_size:
            self.evict(next(iter(self._pools)))
        return handle

    def cached_pool(self, name: str):
        return self.handle(name).pool

    def evict(self, name: str) -> None:
        handle = self._pools.pop(name, None)
        if handle is not None:
            handle.evicted = True
            if handle.refs == 0:
                handle.pool.close()

    def release(self, handle: _PoolHandle) -> None:
        handle.refs -= 1
        if handle.refs == 0 and handle.evicted:
            handle.pool.close()

    # ---- ASGI entry

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        method = scope["method"]
        headers = scope["headers"]
        origin = host = fetch_site = None
        for key, value in headers:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"sec-fetch-site":
                fetch_site = value
        cors = cors_headers(self._cors, origin)
        try:
            # Security guards first, before anything is read or written.
            check_host(self._hosts, host)
            segs = segments(scope)
            if method == "OPTIONS":
                await preflight(self._cors, origin, headers, send)
                return
            check_origin(method, origin, fetch_site, scope.get("scheme", "http"), host, self._cors)
            if segs:
                if segs[0] == "v0":
                    check_token(self._token, scope)  # before matching: unknown /v0 paths need it too
                elif self._mounts and segs[0] in self._mounts:
                    await self._mounted(segs[0], scope, receive, send)
                    return
            route, raw = self._router.match(method, segs)
            if route.access != PUBLIC:
                check_access(self.config, route.access == READ)
            params = {name: _PARAMS[name](value) if name in _PARAMS else value for name, value in raw.items()}
            body = b""
            if route.body is not None:
                ctype = header(scope, b"content-type")
                if route.body == JSON:
                    require_json(ctype)
                else:
                    require_type(ctype, route.body, _LITE3_HINT)
                body = await read_body(scope, receive, self.config.max_body_bytes)
            await route.handler(self, Request(scope, receive, send, cors, params, body))
        except HttpError as exc:
            await send_error(send, exc.error, exc.status, cors + exc.headers)
        except PlasmiteError as exc:
            await send_error(send, exc, exc.kind.http_status, cors)
        except Exception as exc:  # never a traceback on the wire
            err = as_plasmite_error(exc)
            await send_error(send, err, err.kind.http_status, cors)

    async def _mounted(self, name: str, scope, receive, send) -> None:
        asgi_app, access = self._mounts[name]
        if access != PUBLIC:
            check_token(self._token, scope)
            check_access(self.config, access == READ)
        root = (scope.get("root_path") or "").rstrip("/")
        await asgi_app(dict(scope, root_path=f"{root}/{name}"), receive, send)


def create_app(config: ServeConfig | ResolvedConfig | None = None, **kwargs) -> PlasmiteApp:
    """Build the ASGI app from a :class:`ServeConfig` or its fields as keywords.

    ``create_app(pool_dir=..., token=..., access="read-only", cors_origins=[...])``.
    Validation is the same as ``pls serve``'s (it raises ``UsageError``), except
    that TLS belongs to the server running the app, not to the app.
    """
    if isinstance(config, ResolvedConfig):
        return PlasmiteApp(config)
    if config is None:
        config = ServeConfig(**kwargs)
    elif kwargs:
        raise TypeError("pass either a ServeConfig or keyword arguments, not both")
    return PlasmiteApp(resolve(config))


__all__ = ["PlasmiteApp", "ROUTES", "create_app", "error_envelope"]
