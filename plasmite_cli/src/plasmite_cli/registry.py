"""The static table of built-in commands (kept import-light: read on every run).

The root group resolves these names without scanning entry points; the
``plasmite_cli.builtin`` plugin offers the same commands through the
``register_commands`` hook.
"""

from __future__ import annotations

import importlib

# name -> (module, attribute); modules are imported only when the command runs.
BUILTINS: dict[str, tuple[str, str]] = {
    "pool": ("plasmite_cli.commands.pool", "pool"),
    "feed": ("plasmite_cli.commands.feed", "feed"),
    "fetch": ("plasmite_cli.commands.fetch", "fetch"),
    "follow": ("plasmite_cli.commands.follow", "follow"),
    "duplex": ("plasmite_cli.commands.duplex", "duplex"),
    "tap": ("plasmite_cli.commands.tap", "tap"),
    "doctor": ("plasmite_cli.commands.doctor", "doctor"),
    "version": ("plasmite_cli.commands.misc", "version"),
    "completion": ("plasmite_cli.commands.misc", "completion"),
    "plugins": ("plasmite_cli.commands.misc", "plugins_cmd"),
    "help": ("plasmite_cli.commands.misc", "help_cmd"),
}

# Names of the first public release, kept working.
ALIASES: dict[str, str] = {"poke": "feed", "peek": "follow", "get": "fetch"}


def load_builtin(name: str):
    module, attr = BUILTINS[name]
    cmd = getattr(importlib.import_module(module), attr)
    cmd._plasmite_builtin = name
    return cmd
