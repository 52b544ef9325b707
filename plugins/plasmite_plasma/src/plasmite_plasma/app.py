"""The ASGI apps: the subscriber endpoint (SSE at ``/``, ``/hc``, ``/debug``)
and the metrics endpoint, as Plasma splits them over two ports.

A request whose ``Accept`` names ``text/event-stream`` is an SSE subscription
whatever its path, as in Plasma; anything else is routed by path. Both apps
are plain ASGI callables, mountable in any ASGI server or framework.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources
from urllib.parse import parse_qs

from .events import HEARTBEAT, event_id, parse_event_id
from .gateway import Gateway
from .hub import LAG
from .logs import request_fields
from .metrics import CONTENT_TYPE_LATEST

_TYPE_MAX_CHARS = 256


async def _body(receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


async def _respond(send, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
                   headers: list | None = None) -> int:
    hdrs = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])})
    await send({"type": "http.response.body", "body": body})
    return status


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _lifespan(gateway: Gateway, receive, send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            try:
                await gateway.start()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await gateway.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _http_only(gateway: Gateway, handle):
    """An ASGI app: the lifespan starts and stops the gateway; each HTTP
    request (the gateway started, lazily when no lifespan came) goes to ``handle``."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await _lifespan(gateway, receive, send)
        if scope["type"] != "http":
            return
        await gateway.start()
        await handle(scope, receive, send)

    return app


def create_app(gateway: Gateway):
    """The subscriber-facing app (Plasma's HTTP port)."""
    cfg = gateway.cfg
    origin = cfg.origin.encode("latin-1")

    async def app(scope, receive, send):
        started = time.monotonic()
        headers = _headers(scope)
        if "text/event-stream" in headers.get("accept", ""):
            status, extra = await sse(scope, receive, send, headers)
            gateway.access_log.info("sse", extra={"fields": {**request_fields(scope, status, started), **extra}})
            return
        path = scope["path"]
        if path == "/hc":
            problems = await gateway.health()
            for p in problems:
                gateway.error_log.error("health check failed", extra={"fields": {"problem": p}})
            status = await _respond(send, 500 if problems else 200,
                                    ("\n".join(problems) + "\n").encode() if problems else b"")
            gateway.access_log.info("healthCheck", extra={"fields": request_fields(scope, status, started)})
            return
        if path == "/debug" and cfg.debug:
            status = await debug(scope, receive, send)
        else:
            status = await _respond(send, 404, b"404 page not found\n")
        gateway.access_log.info("http", extra={"fields": request_fields(scope, status, started)})

    async def debug(scope, receive, send) -> int:
        if scope["method"] == "GET":
            page = resources.files("plasmite_plasma").joinpath("debug.html").read_bytes()
            return await _respond(send, 200, page, "text/html; charset=utf-8")
        if scope["method"] != "POST":
            return await _respond(send, 405, b"method not allowed\n", headers=[(b"allow", b"GET, POST")])
        body = await _body(receive)
        try:
            await gateway.publish(body)
        except ValueError as exc:
            gateway.error_log.info("bad event on the debug endpoint", extra={"fields": {"error": str(exc)}})
            return await _respond(send, 400, f"{exc}\n".encode())
        except Exception as exc:
            gateway.error_log.error("failed to publish the debug event", extra={"fields": {"error": str(exc)}})
            return await _respond(send, 500, f"{exc}\n".encode())
        return await _respond(send, 200)

    async def sse(scope, receive, send, headers) -> tuple[int, dict]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        values = query.get(cfg.sse_event_query)
        if values is None:
            return await _respond(send, 400, b"specify event queries\n"), {}
        if not values[0]:
            return await _respond(send, 400, b"event query can't be empty\n"), {}
        types = values[0].split(",")
        if len(types) > cfg.max_event_types:
            msg = f"too many event types: {len(types)} (at most {cfg.max_event_types})\n"
            return await _respond(send, 400, msg.encode()), {}
        if any(len(t) > _TYPE_MAX_CHARS for t in types):
            return await _respond(send, 400, f"an event type is longer than {_TYPE_MAX_CHARS} characters\n".encode()), {}
        ua = headers.get("user-agent", "")
        if "MSIE" in ua or "Trident/" in ua or "Edge/" in ua:
            types.append(HEARTBEAT)  # as Plasma: these browsers need a heartbeat to notice drops
        last = headers.get("last-event-id") or (query.get("lastEventId") or [""])[0]
        since = parse_event_id(last, len(gateway.hub.pools)) if last else None
        if last and since is None:
            gateway.error_log.info("ignored an unusable Last-Event-ID", extra={"fields": {"lastEventId": last}})

        hub = gateway.hub
        sub = hub.subscribe("sse", types)
        upto = sub.position
        heartbeat = HEARTBEAT in sub.types
        disconnected = asyncio.Event()

        async def watch():
            while True:
                if (await receive())["type"] == "http.disconnect":
                    disconnected.set()
                    sub.close("client went away")
                    return

        watcher = asyncio.create_task(watch())
        sent = 0
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"connection", b"keep-alive"), (b"access-control-allow-origin", origin),
                (b"x-accel-buffering", b"no")]})
            await send({"type": "http.response.body", "body": f"retry: {cfg.sse_retry}\n\n".encode(), "more_body": True})
            if since is not None:
                async for ev in hub.replay(sub, since, upto):
                    if disconnected.is_set():
                        break
                    await send({"type": "http.response.body", "body": ev.sse_bytes(event_id(ev.position)),
                                "more_body": True})
                    sent += 1
            next_beat = time.monotonic() + cfg.sse_heartbeat
            while not disconnected.is_set():
                if not heartbeat:  # no timer per event: fan-out to many subscribers stays cheap
                    ev = await sub.get()
                else:
                    try:
                        ev = await asyncio.wait_for(sub.get(), max(0.0, next_beat - time.monotonic()))
                    except asyncio.TimeoutError:
                        next_beat = time.monotonic() + cfg.sse_heartbeat
                        await send({"type": "http.response.body", "body": b":heartbeat \n\n", "more_body": True})
                        continue
                if ev is None:
                    break
                if ev is LAG:
                    async for old in hub.catch_up(sub):
                        await send({"type": "http.response.body", "body": old.sse_bytes(event_id(old.position)),
                                    "more_body": True})
                        sent += 1
                    continue
                frames = [ev.sse_bytes(event_id(ev.position))]
                while len(frames) < 256 and not sub.queue.empty():  # a backlog goes out in one write
                    more = sub.queue.get_nowait()
                    if more is None or more is LAG:
                        sub.queue.put_nowait(more)
                        break
                    sub.position = more.position
                    frames.append(more.sse_bytes(event_id(more.position)))
                await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
                sent += len(frames)
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b""})
        except OSError:
            pass
        finally:
            watcher.cancel()
            hub.unsubscribe(sub)
        return 200, {"eventTypes": sorted(sub.types), "events": sent, "closed": sub.reason}

    return _http_only(gateway, app)


def create_metrics_app(gateway: Gateway):
    """Plasma's metrics port: /metrics/plasma, /metrics/python (in place of
    /metrics/go) and Prometheus text at /metrics."""

    async def app(scope, receive, send):
        path = scope["path"]
        m = gateway.metrics
        if path == "/metrics/plasma":
            await _respond(send, 200, json.dumps(m.plasma()).encode() + b"\n", "application/json")
        elif path == "/metrics/python":
            await _respond(send, 200, json.dumps(m.runtime()).encode() + b"\n", "application/json")
        elif path == "/metrics":
            await _respond(send, 200, m.prometheus(), CONTENT_TYPE_LATEST)
        else:
            await _respond(send, 404, b"404 page not found\n")

    return _http_only(gateway, app)
