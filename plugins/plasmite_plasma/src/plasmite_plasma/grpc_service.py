"""``proto.StreamService/Events`` on grpc.aio, in the gateway's event loop.

Each ``Request`` on the stream replaces the subscription (an empty one
unsubscribes, keeping the stream open); ``forceClose`` or the client closing
its side ends the stream with OK, as Plasma does. A subscriber too slow to
keep up catches up from the pool (see ``hub``) instead of holding others back.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from . import stream_pb2_grpc
from .gateway import Gateway
from .hub import LAG

_TYPE_MAX_CHARS = 256


class StreamService(stream_pb2_grpc.StreamServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def Events(self, request_iterator, context):
        gw = self.gateway
        hub = gw.hub
        started = time.monotonic()
        peer = context.peer()
        sub = hub.subscribe("grpc", [])
        bad: list[str] = []

        async def read_requests():
            try:
                async for req in request_iterator:
                    if req.forceClose:
                        break
                    types = [e.type for e in req.Events]
                    if len(types) > gw.cfg.max_event_types or any(len(t) > _TYPE_MAX_CHARS for t in types):
                        bad.append(f"too many or too long event types ({len(types)}; at most "
                                   f"{gw.cfg.max_event_types} of at most {_TYPE_MAX_CHARS} characters)")
                        break
                    gw.access_log.info("gRPC", extra={"fields": {"request-events": types, "peer": peer}})
                    hub.resubscribe(sub, types)
            except (asyncio.CancelledError, grpc.RpcError):
                pass
            finally:
                sub.close("stream closed by the client")

        reader = asyncio.create_task(read_requests())
        sent = 0
        code = grpc.StatusCode.OK
        try:
            while True:
                ev = await sub.get()
                if ev is None:
                    break
                if ev is LAG:
                    async for old in hub.catch_up(sub):
                        await context.write(old.grpc_payload())
                        sent += 1
                    continue
                await context.write(ev.grpc_payload())
                sent += 1
            if bad:
                code = grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, bad[0])
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            reader.cancel()
            hub.unsubscribe(sub)
            gw.access_log.info("grpc", extra={"fields": {
                "status": code.name, "code": code.value[0], "peer": peer, "events": sent,
                "duration": round((time.monotonic() - started) * 1000),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})


def make_server(gateway: Gateway, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The gRPC server bound to host:port (TLS when the config has cert and key)."""
    server = grpc.aio.server()
    stream_pb2_grpc.add_StreamServiceServicer_to_server(StreamService(gateway), server)
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cfg = gateway.cfg
    if cfg.tls:
        with open(cfg.tls_key_file, "rb") as k, open(cfg.tls_cert_file, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        bound = server.add_secure_port(addr, creds)
    else:
        bound = server.add_insecure_port(addr)
    return server, bound
