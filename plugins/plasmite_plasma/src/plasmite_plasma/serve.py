"""Run the gateway: the HTTP, metrics and gRPC servers in one event loop.

uvicorn serves the two ASGI apps and grpc.aio the stream service; the signal
handling is ours so that one SIGINT/SIGTERM stops all three gracefully.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import uvicorn

from plasmite_core.errors import IoError

from .app import create_app, create_metrics_app
from .config import PlasmaConfig
from .gateway import Gateway


class _Server(uvicorn.Server):
    def capture_signals(self):  # the runner owns the signals
        import contextlib

        return contextlib.nullcontext()


def _bind(host: str, port: int, what: str) -> socket.socket:
    """Bind before anything starts, so a busy port is one clear error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise IoError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}",
                      hint="is another server on that port? choose another with the flag or variable") from None
    sock.listen(2048)
    return sock


def _uvicorn(app, cfg: PlasmaConfig, tls: bool) -> _Server:
    config = uvicorn.Config(app, loop="asyncio", lifespan="off", log_config=None,
                            access_log=False, timeout_graceful_shutdown=1,
                            ssl_certfile=cfg.tls_cert_file if tls else None,
                            ssl_keyfile=cfg.tls_key_file if tls else None)
    return _Server(config)


async def run(cfg: PlasmaConfig) -> None:
    from .grpc_service import make_server

    http_sock = _bind(cfg.host, cfg.port, "HTTP (PLASMA_PORT)")
    metrics_sock = _bind(cfg.host, cfg.metrics_port, "metrics (PLASMA_METRICS_PORT)")
    gateway = Gateway(cfg)
    try:
        grpc_server, grpc_port = make_server(gateway, cfg.host, cfg.grpc_port)
    except RuntimeError:
        grpc_port = 0
    if not grpc_port:
        raise IoError(f"cannot listen for gRPC (PLASMA_GRPC_PORT) on {cfg.host}:{cfg.grpc_port}",
                      hint="is another server on that port? choose another with the flag or variable")
    await gateway.start()
    await grpc_server.start()
    http = _uvicorn(create_app(gateway), cfg, cfg.tls)
    metrics = _uvicorn(create_metrics_app(gateway), cfg, False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(http.serve(sockets=[http_sock])),
             asyncio.create_task(metrics.serve(sockets=[metrics_sock]))]
    gateway.error_log.info("listening", extra={"fields": {
        "http": f"{cfg.host}:{cfg.port}", "grpc": f"{cfg.host}:{grpc_port}", "metrics": f"{cfg.host}:{cfg.metrics_port}",
        "tls": cfg.tls, "pools": gateway.hub.refs}})
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    gateway.error_log.info("shutting down gracefully")
    await gateway.hub.stop()  # ends open SSE streams so uvicorn can finish
    http.should_exit = metrics.should_exit = True
    await grpc_server.stop(grace=1.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    await gateway.stop()
