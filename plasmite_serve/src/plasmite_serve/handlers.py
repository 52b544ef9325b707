"""The JSON pool endpoints: list, create, open, info, delete, append, get.

Each is ``async def handler(app, req)`` (``routing.Request``; parameters are
already validated, the body already read). Appends and gets of an open pool
run on the event loop (a few microseconds; the lock is taken without waiting,
see ``locking.py``); everything that may block longer runs in the app's
bounded storage workers.
"""

from __future__ import annotations

import msgspec

from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES, Durability
from plasmite_core.durability import parse_durability
from plasmite_core.errors import NotFoundError, UsageError

from .locking import acquire_async
from .wire import decode_body, json_encode, pool_name, send_json


class CreatePoolBody(msgspec.Struct):
    pool: str
    size_bytes: int | None = None


class PoolBody(msgspec.Struct):
    pool: str


class AppendBody(msgspec.Struct):
    data: msgspec.Raw
    tags: list[str] | None = None
    durability: str | None = None


_create_decoder = msgspec.json.Decoder(CreatePoolBody)
_pool_decoder = msgspec.json.Decoder(PoolBody)
_append_decoder = msgspec.json.Decoder(AppendBody)


def info_dict(name: str, info) -> dict:
    data = info.to_dict()
    out = {"name": name}
    out.update({k: v for k, v in data.items() if k != "name"})
    return out


def not_found(name: str, hint: str = "create it first (POST /v0/pools) or check the name") -> NotFoundError:
    return NotFoundError(f"pool not found: {name}", name, hint=hint)


async def list_pools(app, req) -> None:
    def work():
        return [info_dict(info.name, info) for info in app.store.list()]

    pools = await app.storage(work)
    await send_json(req.send, json_encode({"pools": pools}), 200, req.cors)


async def create_pool(app, req) -> None:
    body = decode_body(_create_decoder, req.body)
    name = pool_name(body.pool)
    size = body.size_bytes
    if size is not None and size <= 0:
        raise UsageError("size_bytes must be positive", hint="omit it for the 1 MiB default, or use e.g. 8388608")
    limit = app.config.max_pool_bytes
    if limit and size is not None and size > limit:
        raise UsageError(
            f"size_bytes {size} exceeds this server's limit of {limit} bytes",
            hint="ask for a smaller pool, or start the server with a larger --max-pool-bytes",
        )

    def work():
        pool = app.store.create(name, size if size is not None else DEFAULT_POOL_SIZE_BYTES)
        try:
            return info_dict(name, pool.info())
        finally:
            pool.close()

    info = await app.storage(work)
    await send_json(req.send, json_encode({"pool": info}), 200, req.cors)


async def open_pool(app, req) -> None:
    body = decode_body(_pool_decoder, req.body)
    await _send_info(app, req, pool_name(body.pool))


async def pool_info(app, req) -> None:
    await _send_info(app, req, req.params["pool"])


async def _send_info(app, req, name: str) -> None:
    def work():
        if not app.store.exists(name):
            raise not_found(name)
        return info_dict(name, app.store.info(name))

    info = await app.storage(work)
    await send_json(req.send, json_encode({"pool": info}), 200, req.cors)


async def delete_pool(app, req) -> None:
    name = req.params["pool"]
    app.evict(name)

    def work():
        if not app.store.exists(name):
            raise not_found(name, "check the name (GET /v0/pools lists pools)")
        app.store.delete(name)

    await app.storage(work)
    await send_json(req.send, b'{"ok":true}', 200, req.cors)


async def append(app, req) -> None:
    body = decode_body(_append_decoder, req.body)
    await append_and_answer(app, req, req.params["pool"], bytes(body.data), body.tags or (),
                            parse_durability(body.durability))


async def append_and_answer(app, req, name: str, data: bytes, tags, mode) -> None:
    """Append validated JSON data and answer with its envelope (JSON and Lite3 appends)."""
    timeout_ms = app.config.lock_timeout_ms
    if mode is Durability.FAST and not app.store.remote:
        # Fast path: a cached handle, a few microseconds under the pool lock,
        # which is taken without waiting so the loop never blocks on it.
        pool = app.cached_pool(name)
        if not pool.try_lock():
            pool = await acquire_async(lambda: app.cached_pool(name), timeout_ms)
        try:
            envelope = pool.append_json(data, tags, mode)
        finally:
            pool.unlock()
    else:
        def work():
            if not app.store.exists(name):
                raise not_found(name, "create it first (POST /v0/pools)")
            pool = app.store.open(name)  # the client's lock_timeout bounds the wait
            try:
                return pool.append_json(data, tags, mode)
            finally:
                pool.close()

        envelope = await app.storage(work)
    await send_json(req.send, b'{"message":' + envelope + b"}", 200, req.cors)


async def get(app, req) -> None:
    envelope = await read_by_seq(app, req, "get_json")
    await send_json(req.send, b'{"message":' + envelope + b"}", 200, req.cors)


async def read_by_seq(app, req, method: str):
    """``pool.get_json`` or ``pool.get`` of the request's pool and seq (in
    the storage thread for a remote backend); NotFound names the seq."""
    seq = req.params["seq"]
    try:
        read = getattr(app.cached_pool(req.params["pool"]), method)
        return await app.storage(read, seq) if app.store.remote else read(seq)
    except NotFoundError as exc:
        if exc.seq is None:
            exc.seq = seq
        raise
