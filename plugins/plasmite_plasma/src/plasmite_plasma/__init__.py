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

from .app import create_app, create_metrics_app
from .config import PlasmaConfig, resolve
from .gateway import Gateway

__all__ = ["Gateway", "PlasmaConfig", "create_app", "create_metrics_app", "resolve"]
