"""Options and helpers shared by several commands (remote flags, pool completion, retry)."""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

import click

T = TypeVar("T")


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
        names = sorted(p.name[: -len(".plasmite")] for p in base.glob("*.plasmite"))
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


def is_retryable(err: BaseException) -> bool:
    from plasmite_core.errors import ErrorKind, PlasmiteError

    if not isinstance(err, PlasmiteError):
        return False
    if err.kind == ErrorKind.BUSY:
        return True
    if err.kind == ErrorKind.IO:
        import errno

        cause = err.__cause__
        return isinstance(cause, OSError) and cause.errno in (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT)
    return False


def with_retry(retries: int, delay_s: float, fn: Callable[[], T]) -> T:
    """Call ``fn``; on a transient failure (Busy, EAGAIN) retry up to ``retries`` times."""
    attempt = 0
    waited = 0.0
    while True:
        try:
            return fn()
        except Exception as err:
            if attempt < retries and is_retryable(err):
                attempt += 1
                time.sleep(delay_s)
                waited += delay_s
                continue
            if attempt:
                note = f"gave up after {attempt} retries ({int(waited * 1000)} ms)"
                hint = getattr(err, "hint", None)
                try:
                    err.hint = f"{hint}; {note}" if hint else note  # type: ignore[attr-defined]
                except AttributeError:
                    pass
            raise


def output_format(jsonl: bool, fmt: str | None) -> str:
    from plasmite_core.errors import UsageError

    if jsonl and fmt is not None and fmt != "jsonl":
        raise UsageError("conflicting output options --jsonl and --format pretty",
                         hint="use --format jsonl (or --jsonl), or --format pretty, not both")
    if fmt is not None:
        return fmt
    return "jsonl" if jsonl else "pretty"


def get_state(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if obj is None:  # command invoked without the root group (tests, plugins)
        from ..app import CliState

        obj = CliState(None, "auto")
    return obj
