"""``pls fetch POOL SEQ``: print one message envelope as JSON (always JSON)."""

from __future__ import annotations

import sys

import click

from .common import complete_pool, get_state, remote_options

EPILOG = """\b
Examples:
  pls fetch chat 1
  pls fetch chat 42 | jq .data
  pls fetch http://127.0.0.1:9700/chat 7 --token-file ./token

\b
Output is always one JSON envelope {"seq","time","meta","data"}: pretty on a
terminal, one compact line when piped. A seq outside the pool's retained
range exits 3 (NotFound)."""


@click.command(epilog=EPILOG, short_help="Print one message by sequence number.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.argument("seq", metavar="SEQ", type=click.IntRange(min=0))
@remote_options
@click.pass_context
def fetch(ctx, pool, seq, token, token_file, tls_ca, tls_skip_verify):
    """Print the message with sequence number SEQ from POOL (local or a URL)."""
    from plasmite_core.errors import ErrorKind, PlasmiteError

    from .. import targets

    if targets.is_http(pool):
        handle = targets.remote_pool(pool, "fetch", token=token, token_file=token_file,
                                     tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
    else:
        handle = targets.open_pool(get_state(ctx), pool, "fetch", can_create=False, token=token,
                                   token_file=token_file, tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
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

        raw = msgspec.json.format(raw, indent=2)
    from ..output import color_json_out, colorize_json

    if color_json_out():
        raw = colorize_json(raw)
    sys.stdout.buffer.write(raw + b"\n")
    sys.stdout.buffer.flush()
    return 0
