"""Entry point of plasmite-serve in the ``plasmite`` group.

Contributes the ``serve`` command group to ``pls`` and the ``http``/``https``
transports, so ``pls feed|follow|duplex http(s)://host:port/POOL`` work and
``plasmite_core.plugins.transport("http")`` returns a ``RemoteClient``
factory. Imports stay lazy: loading the plugin must not slow down ``pls``.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("plasmite")


@hookimpl
def register_commands(cli):
    from .cli import serve

    cli.add_command(serve)


def _remote_client(url: str, **options):
    from .client import RemoteClient

    return RemoteClient(url, **options)


@hookimpl
def register_transports(register):
    register("http", _remote_client)
    register("https", _remote_client)
