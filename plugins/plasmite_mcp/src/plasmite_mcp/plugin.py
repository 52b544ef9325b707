"""Entry point of plasmite-mcp in the ``plasmite`` group.

Adds ``pls mcp`` (stdio) and, when plasmite-serve runs, the ``/mcp`` route.
Imports stay lazy: loading the plugin must not slow down ``pls``.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("plasmite")


@hookimpl
def register_commands(cli):
    from .command import mcp

    cli.add_command(mcp)


def _mcp_endpoint(server):
    from .http import McpEndpoint

    return McpEndpoint(server)


@hookimpl
def register_serve_routes(register):
    register("mcp", _mcp_endpoint)
