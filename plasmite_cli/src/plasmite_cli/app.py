"""The ``pls`` / ``plasmite`` root click group (the process entry point is ``main``).

Why it looks like this:

- Start-up time is part of the product (a one-shot ``pls feed`` should cost
  little more than starting Python), so the root group resolves built-in
  commands from a static table and imports only the module of the command
  being run. Entry points (``plasmite_core.plugins``) are scanned only when a
  name is unknown, or when every command is needed (help, completion).
- Commands from other distributions (``plasmite-serve``'s ``serve``, third
  parties) arrive through the ``register_commands(cli)`` hook; the built-ins
  are registered through the same hook by ``plasmite_cli.builtin``.
- Exceptions of click itself become exit codes or ``PlasmiteError`` here;
  ``plasmite_cli.main`` renders errors and maps them to exit codes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from . import __version__
from .registry import ALIASES, BUILTINS, load_builtin
from .state import CliState

HELP_EPILOG = """\b
A pool is a persistent, bounded ring of JSON messages in one file; many
processes feed it and follow it at once, with no daemon.

\b
First steps:
  pls pool create chat
  pls follow chat                                   # terminal 1
  pls feed chat '{"from":"alice","msg":"hello"}'    # terminal 2

\b
Pool refs: NAME is DIR/NAME.plasmite; a ref containing "/" is a path;
NAME.plasmite lives in DIR; http(s)://host:port/NAME is a remote pool
(needs plasmite-serve). Top-level options go before the command.

\b
Errors go to stderr: text with a hint on a terminal, a JSON envelope
{"error": {"kind", "message", "hint", ...}} otherwise. Exit codes: 1 Internal,
2 Usage, 3 NotFound, 4 AlreadyExists, 5 Busy, 6 Permission, 7 Corrupt, 8 Io,
9 RetentionGap; follow/duplex 124 on --timeout. A lock held longer than
PLASMITE_LOCK_TIMEOUT (default 5s) is Busy; the hint names its holder.

\b
Aliases: poke = feed, peek = follow, get = fetch."""


class PlasmiteGroup(click.Group):
    """A click group with statically known built-ins and lazily scanned plugins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded = False

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            from .main import StdoutClosed

            raise StdoutClosed() from None
        except KeyboardInterrupt:
            # Past click, whose handler writes a bare newline to stderr
            # (non-TTY stderr carries one JSON object per line).
            from .main import Interrupted

            raise Interrupted() from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        target = ALIASES.get(cmd_name, cmd_name)
        if target in BUILTINS:
            cmd = load_builtin(target)
            if target != cmd_name:
                cmd = _alias(cmd, cmd_name)
            self.commands[cmd_name] = cmd
            return cmd
        self.load_plugins()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugins()
        names = set(self.commands) | set(BUILTINS)
        return sorted(n for n in names if n not in ALIASES)

    def load_plugins(self) -> None:
        """Let every installed plugin add its commands (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            from plasmite_core import plugins

            plugins.register_commands(self)
        except Exception as exc:  # a broken third-party plugin must not break pls
            from .output import notice

            notice("plugin_error", "pls", "-", f"a plugin failed to register its commands: {exc}")
        # Built-ins win over plugin commands of the same name.
        for name in BUILTINS:
            cmd = self.commands.get(name)
            if cmd is None or getattr(cmd, "_plasmite_builtin", None) != name:
                self.commands[name] = load_builtin(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if name and not name.startswith("-") and "No such command" in str(exc):
                import difflib

                known = self.list_commands(ctx) + list(ALIASES)
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean `pls {close[0]}`?" if close else "run `pls --help` to list commands"
                from plasmite_core.errors import UsageError

                raise UsageError(f"unknown command: {name}", hint=hint) from None
            raise


def _alias(cmd: click.Command, name: str) -> click.Command:
    import copy

    alias = copy.copy(cmd)
    alias.name = name
    alias.hidden = True
    alias.short_help = f"Alias of {cmd.name}."
    return alias


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"plasmite {__version__}")
    ctx.exit(0)


@click.group(
    cls=PlasmiteGroup,
    name="pls",
    epilog=HELP_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    no_args_is_help=True,
)
@click.option(
    "--dir",
    "pool_dir",
    metavar="DIR",
    envvar="PLASMITE_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False),
    help="Pool directory for named pools (default: ~/.plasmite/pools).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour error labels on stderr; always also colours JSON on stdout.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, pool_dir: str | None, color: str) -> None:
    """Persistent JSON message pools for local and host-adjacent IPC.

    `feed` appends messages, `follow` streams them, `fetch` reads one by
    sequence number; `pool` manages pool files.
    """
    if color != "auto":  # output (imported lazily) defaults to auto
        from .output import set_color_mode

        set_color_mode(color)
    ctx.obj = CliState(pool_dir, color)


def _prog_name() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return base if base in ("pls", "plasmite") else "pls"


def _usage_from_click(exc: click.UsageError):
    from plasmite_core.errors import UsageError

    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "pls"
    # click names IntRange "integer range"; the user typed a plain number.
    message = exc.format_message().replace("not a valid integer range", "not a valid integer")
    hint = f"see `{path} --help`"
    if isinstance(exc, click.NoSuchOption) and ctx is not None and ctx.parent is not None:
        option = exc.option_name
        if option in ("--dir", "--color"):
            rest = path.split(" ", 1)[1] if " " in path else "COMMAND"
            hint = f"{option} is a global option and goes before the command: `pls {option} VALUE {rest} ...`"
        elif ctx.command.name == "tap":
            hint = "put `--` between the pool and the command, so the command's options are its own: " \
                   "`pls tap build -- sh -c 'make test'`"
    return UsageError(message, hint=hint)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (also ``plasmite_cli.main:main``)."""
    from .main import main as _main

    _main(argv)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (see ``plasmite_cli.main.run``)."""
    from .main import run as _run

    return _run(argv)


def run_click(argv: list[str] | None) -> int:
    """Run the click application; click's own exceptions become exit codes or
    ``PlasmiteError`` (rendered by ``plasmite_cli.main.guarded``)."""
    from plasmite_core.errors import UsageError

    if os.environ.get("_PLS_COMPLETE", "").startswith(("powershell", "elvish")):
        from .completion_shells import register

        register()
    try:
        rv = cli.main(
            args=argv,
            prog_name=_prog_name(),
            complete_var="_PLS_COMPLETE",
            standalone_mode=False,
        )
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return 2
    except click.UsageError as exc:
        raise _usage_from_click(exc) from None
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as exc:
        raise UsageError(exc.format_message(), hint="see `pls --help`") from None
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
