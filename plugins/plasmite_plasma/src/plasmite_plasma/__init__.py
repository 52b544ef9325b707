"""A Plasma-compatible push gateway over Plasmite pools.

openfresh Plasma's subscribers (SSE ``EventSource`` clients, gRPC
``StreamService.Events`` clients) and publishers (Plasma-shaped JSON
``PUBLISH``ed on Redis channels) work unchanged, with pools as the event
source: history, replay and resumable streams come with them.

Mount the ASGI apps yourself::

    from plasmite_plasma import Gateway, create_app, resolve
    gateway = Gateway(resolve(os.environ))
    app = create_app(gateway)          # SSE at /, /hc, /debug
"""

from __future__ import annotations

__all__ = ["Gateway", "PlasmaConfig", "create_app", "create_metrics_app", "resolve"]

_HOMES = {"Gateway": "gateway", "PlasmaConfig": "config", "resolve": "config",
          "create_app": "app", "create_metrics_app": "app"}


def __getattr__(name: str):
    # Lazy: `pls` imports this package to register `pls plasma`, and must not
    # pay for uvicorn, prometheus-client or grpc on every start-up.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
