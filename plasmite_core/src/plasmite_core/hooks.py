"""pluggy hook specifications of the ``plasmite`` project.

Register-callback style (as in ``llm`` and ``datasette``): each hook receives
a ``register`` function, or the click group for commands, so a plugin can
contribute any number of items from one small function.
"""

from __future__ import annotations

import pluggy

PROJECT = "plasmite"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_codecs(register):
    """Call ``register(name, codec)`` for each payload codec provided."""


@hookspec
def register_filters(register):
    """Call ``register(name, factory)``; ``factory(expr) -> predicate(message_dict) -> bool``."""


@hookspec
def register_transports(register):
    """Call ``register(scheme, factory)``; ``factory(url, **options)`` returns a client
    with the local ``Client`` surface (open_pool, create_pool, pool, ...)."""


@hookspec
def register_commands(cli):
    """Add click commands to the root ``pls`` group: ``cli.add_command(...)``."""


@hookspec
def register_serve_routes(register):
    """Call ``register(name, factory)`` to serve ``/NAME`` on ``pls serve``.

    ``factory(app)`` gets the ``PlasmiteApp`` and returns an ASGI callable,
    which the app mounts behind its Host, Origin, token and access-mode
    guards (plasmite-mcp's ``/mcp``)."""
