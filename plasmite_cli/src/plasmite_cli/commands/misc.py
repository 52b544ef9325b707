"""``pls version``, ``pls completion SHELL`` and ``pls plugins``."""

from __future__ import annotations

import sys

import click

from ..output import emit_json, table, write_out


@click.command(
    epilog="""\b
Examples:
  pls version
  pls version | jq -r .version

\b
Text on a terminal, JSON ({"name","version",...}) when piped.""",
    short_help="Print version information.",
)
def version():
    """Print the version of plasmite (and its core)."""
    from plasmite_core import __version__ as core_version

    from .. import __version__

    if sys.stdout.isatty():
        write_out(f"plasmite {__version__} (core {core_version}, Python {sys.version.split()[0]})\n")
    else:
        emit_json({"name": "plasmite", "version": __version__, "core_version": core_version,
                   "python": sys.version.split()[0]})
    return 0


@click.command(
    epilog="""\b
Examples:
  source <(pls completion bash)                      # current bash session
  pls completion bash > ~/.local/share/bash-completion/completions/pls
  pls completion zsh > ~/.zfunc/_pls                 # then: autoload -U compinit && compinit
  pls completion fish > ~/.config/fish/completions/pls.fish
  pls completion powershell | Out-String | Invoke-Expression
  pls completion elvish > ~/.config/elvish/lib/pls.elv  # then: use pls

\b
The script completes both `pls` and `plasmite`: commands, options, choices and
pool names from the pool directory. bash, zsh and fish use click's scripts;
powershell and elvish use this project's, over the same protocol.""",
    short_help="Print a shell completion script.",
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish", "powershell", "elvish"]))
@click.pass_context
def completion(ctx, shell):
    """Print the completion script for SHELL (bash, zsh, fish, powershell or elvish)."""
    from click.shell_completion import get_completion_class

    from ..completion_shells import register

    register()
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    src = cls(root, {}, "pls", "_PLS_COMPLETE").source()
    func = "_pls_completion"
    if shell == "bash":
        extra = f"\ncomplete -o nosort -F {func} plasmite\n"
    elif shell == "zsh":
        extra = f"\ncompdef {func} plasmite\n"
    elif shell in ("powershell", "elvish"):
        extra = ""  # these scripts register both names themselves
    else:
        extra = "\ncomplete --no-files --command plasmite --arguments \"(_pls_completion)\"\n"
    write_out(src.rstrip("\n") + "\n" + extra)
    return 0


@click.command(
    "plugins",
    epilog="""\b
Examples:
  pls plugins
  pls plugins --json

\b
Plugins are distributions with a `plasmite` entry point: they add codecs,
message filters (jq expressions for follow), transports (http:// refs) and
commands.""",
    short_help="List installed plugins.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_cmd(as_json):
    """List installed Plasmite plugins and the hooks they implement."""
    from plasmite_core import plugins

    items = plugins.list_plugins()
    if as_json or not sys.stdout.isatty():
        emit_json({"plugins": items})
        return 0
    rows = [[p["name"], p["distribution"], str(p["version"]), ", ".join(p["hooks"])] for p in items]
    write_out(table(["NAME", "DISTRIBUTION", "VERSION", "HOOKS"], rows))
    return 0


@click.command("help", short_help="Show help for a command.")
@click.argument("command", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_cmd(ctx, command):
    """Show the help of COMMAND (e.g. `pls help pool create`), or of pls itself."""
    from plasmite_core.errors import UsageError

    root_ctx = ctx.find_root()
    cmd = root_ctx.command
    cur = root_ctx
    path = []
    for name in command:
        sub = cmd.get_command(cur, name) if isinstance(cmd, click.Group) else None
        if sub is None:
            where = " ".join(["pls", *path])
            raise UsageError(f"no such command: {where} {name}", hint=f"run `{where} --help` to list commands")
        path.append(name)
        cur = click.Context(sub, info_name=name, parent=cur)
        cmd = sub
    write_out(cmd.get_help(cur) + "\n")
    return 0
