"""``pls follow``: stream a pool's messages to stdout as they arrive.

The click command only checks its options and opens the pool; the output
loops live in ``plasmite_cli.following`` (which ``duplex`` uses too).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from plasmite_core.protocols import Capability

from .common import complete_pool, get_state, output_format, remote_options

EPILOG = """\b
Examples:
  pls follow chat                                   # live, until Ctrl-C
  pls follow chat --tail 10                         # last 10, then live
  pls follow ci --where '.data.status == "green"' --one   # wait for a match
  pls follow telemetry --tag alert --where '.data.service == "api"'
  pls follow incidents --since 1h --replay 10       # replay at 10x speed
  pls follow build --since 12h --replay 0 --jsonl   # dump history, then exit
  pls follow chat --jsonl | jq -r .data.msg

\b
Start: new messages only by default; --tail N starts with the N newest
(matching) messages; --since 30m|2h|1d|RFC3339 starts at that time.
--tail N --one waits until N matching messages exist (as upstream), so on a
pool holding fewer it waits for more; use --tail 1 --one for the newest.
--replay SPEED re-emits the selected history with its original spacing
divided by SPEED (0 = no delay) and exits at its end; it needs --tail or
--since.

\b
Filters: --tag and --where may repeat; all must hold. --where takes a jq
expression that must yield booleans (install plasmite-jq); a runtime error
in it counts as no match.

\b
Output: pretty JSON by default, one compact envelope per line with --jsonl
(or --format jsonl); --data-only prints only .data. When messages were
overwritten before they could be read, a drop notice goes to stderr (silence
it with --quiet-drops). --timeout exits 124 when no message is printed for
that long."""


@click.command(epilog=EPILOG, short_help="Stream messages from a pool.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.option("-n", "--tail", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Print the N newest matching messages first, then keep following.")
@click.option("--since", metavar="WHEN", help="Start at messages from this time: 30m, 2h, 1d or RFC 3339.")
@click.option("--one", is_flag=True,
              help="Exit after printing one matching message. With --tail N: wait until N matching "
                   "messages exist (however long that takes), then print the newest.")
@click.option("--timeout", metavar="DURATION", help="Exit 124 if nothing is printed for DURATION (500ms, 5s, 1m).")
@click.option("--where", "where", multiple=True, metavar="EXPR",
              help="Keep messages for which the jq EXPR is true (repeatable; all must hold).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Keep messages carrying TAG (repeatable; all must match).")
@click.option("--jsonl", is_flag=True, help="Print JSON Lines (short for --format jsonl; give one or the other).")
@click.option("--format", "fmt", type=click.Choice(["pretty", "jsonl"]), help="Output format (default pretty).")
@click.option("--data-only", is_flag=True, help="Print only each message's .data.")
@click.option("--replay", type=float, metavar="SPEED",
              help="Replay the selected history with original timing / SPEED (0 = instant), then exit.")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist (on a server too, if it allows).")
@click.option("--quiet-drops", is_flag=True, help="Do not print drop notices on stderr.")
@click.option("--no-notify", is_flag=True, help="Do not sleep on wake-ups; poll the pool instead.")
@remote_options
@click.pass_context
def follow(ctx, pool, tail, since, one, timeout, where, tags, jsonl, fmt, data_only, replay, create,
           quiet_drops, no_notify, token, token_file, tls_ca, tls_skip_verify):
    """Print messages from POOL as they arrive."""
    from plasmite_core.errors import UsageError

    from .. import parsing, targets
    from ..following import DropNotices, Emitter, both, has_tags, compile_where, run_follow, run_replay

    fmt = output_format(jsonl, fmt)
    if since is not None and tail:
        raise UsageError("--since and --tail cannot be combined", hint="use one of --since WHEN or --tail N")
    timeout_ms = parsing.parse_duration_ms(timeout) if timeout is not None else None
    now = time.time_ns()
    since_ns = parsing.parse_since(since, now) if since is not None else None
    if replay is not None:
        if replay != replay or replay in (float("inf"), float("-inf")):
            raise UsageError("--replay speed must be a finite number", hint="--replay 1 is real time, 0 no delay")
        if replay < 0:
            raise UsageError("--replay speed must be non-negative", hint="--replay 1 is real time, 2 twice as fast, 0 no delay")
        if not tail and since is None:
            raise UsageError("--replay requires --tail or --since",
                             hint="replay works on history: add --tail N or --since 1h")
    predicate = compile_where(where)
    tag_list = parsing.check_tags(tags)

    if targets.is_http(pool):
        for flag, used in (("--replay", replay is not None),
                           ("--no-notify", no_notify), ("--quiet-drops", quiet_drops)):
            if used:
                raise UsageError(f"remote follow does not support {flag}",
                                 hint="use --tail N for remote history; --replay works on local pools")
        handle = targets.remote_pool(pool, "follow", token=token, token_file=token_file,
                                     tls_ca=tls_ca, tls_skip_verify=tls_skip_verify, create=create)
        label = pool
    else:
        handle = targets.open_pool(get_state(ctx), pool, "follow", create=create, token=token,
                                   token_file=token_file, tls_ca=tls_ca, tls_skip_verify=tls_skip_verify)
        label = str(handle.path)
    if since is not None and Capability.SINCE_TIME not in handle.capabilities:
        raise UsageError(f"--since is not supported for {targets.redact(pool)}: its transport cannot start at a time",
                         hint="use --tail N for history on this pool")

    if since_ns is not None and since_ns > now:
        return 0

    emitter = Emitter(fmt, data_only)
    drops = DropNotices(targets.redact(pool), label, quiet=quiet_drops)
    opts: dict[str, Any] = {"on_gap": drops.gap}
    if tag_list:
        if Capability.LOCAL_READS in handle.capabilities:
            opts["tags"] = tag_list  # the core tests tags without decoding payloads
        else:
            # Over a network: test tags here so every message reaches us and
            # the --tail scan knows when it has seen the newest one.
            predicate = both(has_tags(tag_list), predicate)

    if replay is not None:
        return run_replay(handle, emitter, predicate, tail=tail, since_ns=since_ns, speed=replay, one=one, opts=opts)
    rc = run_follow(handle, emitter, predicate, tail=tail, since_ns=since_ns, one=one,
                    timeout_ms=timeout_ms, drops=drops, opts=opts, poll=no_notify)
    if rc == 124 and sys.stderr.isatty():
        from ..output import write_err

        write_err(f"No messages received (timed out after {timeout}).\n")
    return rc
