"""Entry point of plasmite-plasma in the ``plasmite`` group: adds ``pls plasma``.

Only the click command is imported here; grpc, uvicorn and redis load when
the command runs, so installing the plugin leaves ``pls`` start-up as it was.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("plasmite")


@hookimpl
def register_commands(cli):
    from .cli import plasma

    cli.add_command(plasma)
