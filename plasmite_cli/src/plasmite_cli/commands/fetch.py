"""``pls fetch POOL SEQ``: print one message envelope as JSON (always JSON)."""

from __future__ import annotations

import sys

import click

from .common import complete_pool, get_state

EPILOG = """\b
Examples:
  pls fetch chat 1
  pls fetch chat 42 | jq .data

\b
Output is always one JSON envelope {"seq","time","meta","data"}: pretty on a
terminal, one compact line when piped. A seq outside the pool's retained
range exits 3 (NotFound)."""


@click.command(epilog=EPILOG, short_help="Print one message by sequence number.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.argument("seq", metavar="SEQ", type=click.IntRange(min=0))
@click.pass_context
def fetch(ctx, pool, seq):
    """Print the message with sequence number SEQ from POOL (local, or a redis:// ref)."""
    from plasmite_core.errors import ErrorKind, PlasmiteError, UsageError

    from .. import targets

    if targets.is_http(pool):
        raise UsageError("fetch takes local pool refs (or a transport such as redis://), not http(s)",
                         hint="use `pls follow URL --tail N` for remote pools")
    handle = targets.open_pool(get_state(ctx), pool, "fetch", can_create=False)
    try:
        raw = handle.get_json(seq)
    except PlasmiteError as err:
        if err.kind == ErrorKind.NOT_FOUND:
            oldest, newest = handle.bounds()
            if newest is None:
                err.hint = f"pool {targets.redact(pool)!r} is empty"
            else:
                err.hint = f"pool {targets.redact(pool)!r} holds seq {oldest}..{newest}"
            if err.seq is None:
                err.seq = seq
        raise
    if sys.stdout.isatty():
        import msgspec

        sys.stdout.write(msgspec.json.format(raw, indent=2).decode() + "\n")
        sys.stdout.flush()
    else:
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.buffer.flush()
    return 0
