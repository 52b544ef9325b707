"""The ``pls`` / ``plasmite`` root command and process entry point.

Why it looks like this:

- Start-up time is part of the product (a one-shot ``pls feed`` should cost
  little more than starting Python), so the root group resolves built-in
  commands from a static table and imports only the module of the command
  being run. Entry points (``plasmite_core.plugins``) are scanned only when a
  name is unknown, or when every command is needed (help, completion).
- Commands from other distributions (``plasmite-serve``'s ``serve``, third
  parties) arrive through the ``register_commands(cli)`` hook; the built-ins
  are registered through the same hook by ``plasmite_cli.builtin``.
- Every failure leaves through ``main``: a ``PlasmiteError`` is rendered as
  text plus hint on a terminal or a JSON envelope otherwise, with the exit
  code of its kind; anything unexpected becomes an ``Internal`` error. No
  traceback reaches a user.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from . import __version__
from .registry import ALIASES, BUILTINS, load_builtin

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
9 RetentionGap; follow/duplex 124 on --timeout.

\b
Aliases: poke = feed, peek = follow, get = fetch."""


class CliState:
    """Per-invocation settings shared by commands (``ctx.obj``)."""

    def __init__(self, pool_dir: str | None, color: str) -> None:
        self._pool_dir = pool_dir
        self.color = color
        self._client = None

    @property
    def pool_dir(self):
        from pathlib import Path

        if self._pool_dir:
            return Path(self._pool_dir).expanduser()
        from plasmite_core.refs import default_pool_dir

        return default_pool_dir()

    def client(self):
        if self._client is None:
            from plasmite_core.client import Client

            self._client = Client(self.pool_dir)
        return self._client


class PlasmiteGroup(click.Group):
    """A click group with statically known built-ins and lazily scanned plugins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded = False

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
    help="Colour error labels on stderr.",
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
    message = exc.format_message()
    return UsageError(message, hint=f"see `{path} --help`")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and exit with the right code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (never raises, except SystemExit)."""
    from plasmite_core.errors import InternalError, PlasmiteError

    def render_error(err) -> None:
        from .output import render_error as render

        render(err)

    try:
        try:
            rv = cli.main(
                args=argv,
                prog_name=_prog_name(),
                complete_var="_PLS_COMPLETE",
                standalone_mode=False,
            )
        finally:
            _flush_stdout()
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except PlasmiteError as err:
        render_error(err)
        return err.kind.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return 2
    except click.UsageError as exc:
        err = _usage_from_click(exc)
        render_error(err)
        return err.kind.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        from plasmite_core.errors import UsageError

        err = UsageError(exc.format_message(), hint="see `pls --help`")
        render_error(err)
        return exc.exit_code or 2
    except (click.Abort, KeyboardInterrupt):
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except OSError as exc:
        from plasmite_core.errors import from_os_error

        err = from_os_error(exc)
        render_error(err)
        return err.kind.exit_code
    except Exception as exc:  # no traceback ever reaches a user
        err = InternalError(
            f"unexpected {type(exc).__name__}: {exc}",
            hint="this is a bug in plasmite; please report it with the command you ran",
        )
        render_error(err)
        return err.kind.exit_code


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
