"""Entry point of plasmite-redis in the ``plasmite`` group: the ``redis`` and
``rediss`` transports. Imports stay lazy so loading the plugin costs ``pls``
nothing until a Redis ref is used."""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("plasmite")


def _redis_client(url: str, **options):
    from .client import RedisClient

    return RedisClient(url, **options)


@hookimpl
def register_transports(register):
    register("redis", _redis_client)
    register("rediss", _redis_client)
