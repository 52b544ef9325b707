"""The CLI's own commands, offered through the ``register_commands`` hook.

This module is plasmite-cli's ``plasmite`` entry point: like pytest's built-in
plugins, the built-in commands use the same hook as plasmite-serve and third
parties. (The root group also resolves them statically, see ``registry``, so
running a built-in never waits for an entry-point scan.)
"""

from __future__ import annotations

import pluggy

from .registry import BUILTINS, load_builtin

hookimpl = pluggy.HookimplMarker("plasmite")


@hookimpl
def register_commands(cli):
    for name in BUILTINS:
        cli.add_command(load_builtin(name), name)
