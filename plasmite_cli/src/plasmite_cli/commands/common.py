"""Options and helpers shared by several commands (remote flags, pool completion, retry)."""

from __future__ import annotations

from typing import Any

import click

def complete_pool(ctx: click.Context, param: click.Parameter, incomplete: str):
    """Shell completion for POOL arguments: pool names in the pool directory."""
    from click.shell_completion import CompletionItem

    try:
        root = ctx.find_root()
        pool_dir = root.params.get("pool_dir")
        from pathlib import Path

        if pool_dir:
            base = Path(pool_dir).expanduser()
        else:
            from plasmite_core.refs import default_pool_dir

            base = default_pool_dir()
        from plasmite_core.refs import pool_files

        names = [name for name, _path in pool_files(base)]
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def remote_options(fn):
    """``--token``, ``--token-file``, ``--tls-ca``, ``--tls-skip-verify`` (remote refs only)."""
    for decorator in reversed(
        [
            click.option("--token", metavar="TOKEN", help="Bearer token for remote refs (prefer --token-file)."),
            click.option("--token-file", metavar="PATH", type=click.Path(dir_okay=False),
                         help="Read the bearer token for remote refs from a file."),
            click.option("--tls-ca", metavar="PATH", type=click.Path(dir_okay=False),
                         help="Trust this PEM CA/certificate for remote refs."),
            click.option("--tls-skip-verify", is_flag=True,
                         help="Disable TLS verification for remote refs (unsafe; development only)."),
        ]
    ):
        fn = decorator(fn)
    return fn


def output_format(jsonl: bool, fmt: str | None) -> str:
    from plasmite_core.errors import UsageError

    if jsonl and fmt is not None:
        raise UsageError(f"conflicting output options --jsonl and --format {fmt}",
                         hint="give one of them: --jsonl is short for --format jsonl")
    if fmt is not None:
        return fmt
    return "jsonl" if jsonl else "pretty"


def get_state(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if obj is None:  # command invoked without the root group (tests, plugins)
        from ..state import CliState

        obj = CliState(None, "auto")
    return obj
