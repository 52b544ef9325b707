"""``pls plasma``: run the Plasma-compatible gateway.

Settings come from Plasma's environment variables; a flag overrides its
variable. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import os

import click

EPILOG = """\b
Examples:
  pls plasma                                  # follow pool `plasma`; :8080 SSE, :50051 gRPC, :9999 metrics
  pls plasma --pool events --pool alerts --type-from tag
  PLASMA_SUBSCRIBER_TYPE=redis PLASMA_SUBSCRIBER_REDIS_CHANNELS=plasma pls plasma
  curl -N -H 'Accept: text/event-stream' 'localhost:8080/?eventType=program:1234'

\b
Every PLASMA_* variable of openfresh Plasma is read (see docs/plasma.md);
unknown names and bad values stop the start-up with an error."""


@click.command("plasma", epilog=EPILOG, context_settings={"max_content_width": 100})
@click.option("--host", help="Interface to listen on (PLASMA_HOST; default 0.0.0.0, as Plasma).")
@click.option("--port", help="SSE/health/debug port (PLASMA_PORT; default 8080).")
@click.option("--grpc-port", help="gRPC port (PLASMA_GRPC_PORT; default 50051).")
@click.option("--metrics-port", help="Metrics port (PLASMA_METRICS_PORT; default 9999).")
@click.option("--pool", "pools", multiple=True, metavar="REF",
              help="Pool to follow, by name, path or URL; repeatable (PLASMA_POOLS, comma-separated; "
                   "default plasma, created when missing). Redis channel messages are recorded into the first.")
@click.option("--pool-dir", help="Directory of pool names (PLASMA_POOL_DIR; default ~/.plasmite/pools).")
@click.option("--type-from", type=click.Choice(["meta", "tag"]),
              help="Event type from the message's meta.type (Plasma shape, default) or its first tag "
                   "(then the whole message data is the event data) (PLASMA_TYPE_FROM).")
@click.option("--subscriber", "subscriber_type", type=click.Choice(["pool", "redis"]),
              help="Also record Plasma events PUBLISHed on Redis channels: redis (PLASMA_SUBSCRIBER_TYPE).")
@click.option("--redis-addr", help="host:port (PLASMA_SUBSCRIBER_REDIS_ADDR; default localhost:6379).")
@click.option("--redis-db", help="Redis database number (PLASMA_SUBSCRIBER_REDIS_DB).")
@click.option("--redis-channel", "redis_channels", multiple=True,
              help="Channel to subscribe to; repeatable (PLASMA_SUBSCRIBER_REDIS_CHANNELS).")
@click.option("--debug/--no-debug", default=None, help="Serve /debug, a page to publish test events (PLASMA_DEBUG).")
@click.option("--origin", help="Access-Control-Allow-Origin of SSE responses (PLASMA_ORIGIN).")
@click.option("--sse-retry", help="retry: milliseconds sent to EventSource clients (PLASMA_SSE_RETRY; default 2000).")
@click.option("--event-query", "sse_event_query",
              help="Query parameter naming the event types (PLASMA_SSE_EVENTQUERY; default eventType).")
@click.option("--heartbeat", "sse_heartbeat",
              help="Interval of :heartbeat comments to subscribers of `heartbeat` (PLASMA_SSE_HEARTBEAT; default 10s).")
@click.option("--max-event-types", help="Most event types one subscriber may ask for (PLASMA_MAX_EVENT_TYPES; default 100).")
@click.option("--tls-cert", "tls_cert_file", help="Certificate (PEM) for HTTPS and gRPC TLS (PLASMA_TLS_CERT_FILE).")
@click.option("--tls-key", "tls_key_file", help="Private key (PEM) (PLASMA_TLS_KEY_FILE).")
def plasma(**flags):
    """Serve pools to Plasma's SSE and gRPC subscribers.

    A drop-in for openfresh Plasma: EventSource clients at / (Accept:
    text/event-stream, ?eventType=a,b), gRPC StreamService.Events, /hc, and
    /metrics/plasma on the metrics port, configured by Plasma's environment.
    Events come from pools, so subscribers resume with Last-Event-ID.
    """
    import asyncio

    from .config import resolve

    flags["pools"] = list(flags["pools"]) or None
    flags["redis_channels"] = list(flags["redis_channels"]) or None
    cfg = resolve(os.environ, flags)
    from .serve import run

    try:
        asyncio.run(run(cfg))
    except KeyboardInterrupt:
        pass
