"""``pls feed``: the click command; the work is done by ``plasmite_cli.feeding``."""

from __future__ import annotations

import click

from .common import complete_pool, get_state, remote_options

EPILOG = """\b
Examples:
  pls feed chat '{"from":"alice","msg":"hello"}'      # inline JSON
  pls feed alerts --tag sev1 --tag api '{"msg":"down"}'
  jq -c '.items[]' data.json | pls feed items           # JSON Lines on stdin
  jq '.items[]' data.json | pls feed items --in jq      # pretty values, any layout
  pls feed items --file events.jsonl                    # a file (- for stdin)
  journalctl -o json-seq -f | pls feed syslog --create  # a live json-seq stream
  pls feed ci --create '{"status":"green"}'             # create the pool if missing

\b
Input: exactly one of DATA, --file, or piped stdin. Each message's data
must be a JSON object ('[1,2]', '42' or '"text"' are Usage errors). --in
picks the stream format: auto detects JSON Lines, json-seq and event
streams, and accepts pretty or concatenated JSON; json takes exactly one
document (a second value stores nothing); jq takes values in any layout.
--errors skip reports each bad record on stderr and exits 1 at the end if
any was rejected (not with --in jq, which cannot resynchronise); --errors
stop (default) stops at the first one, after storing the records before it.

\b
Output: one receipt per stored message: `fed seq=N at TIME` on a terminal,
{"seq","time","meta"} JSON lines when piped."""


@click.command(epilog=EPILOG, short_help="Append JSON messages to a pool.")
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.argument("data", metavar="[DATA]", required=False)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag the message(s) (repeatable).")
@click.option("-f", "--file", "file", metavar="PATH",
              help="Read a JSON value or stream from a file; - reads stdin.")
@click.option("-i", "--in", "in_mode",
              type=click.Choice(["auto", "jsonl", "json", "jq", "json-seq", "seq", "event"]),
              default="auto", show_default=True,
              help="Stream format for --file/stdin: auto, jsonl (one value per line), json (exactly one "
                   "value), jq (values in any layout, as jq prints them), json-seq (RFC 7464, alias seq), "
                   "event (SSE data:).")
@click.option("-e", "--errors", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
              help="On a bad stream record: stop, or skip it with a notice on stderr.")
@click.option("--durability", type=click.Choice(["fast", "flush"]), default="fast", show_default=True,
              help="fast returns after the write; flush also syncs the pool file to disk.")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist (on a server too, if it allows).")
@click.option("--create-size", metavar="SIZE", help="Size of a pool made by --create, e.g. 8M (default 1M).")
@click.option("--retry", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retries for transient failures (pool busy, EAGAIN).")
@click.option("--retry-delay", metavar="DURATION",
              help="Pause between retries, e.g. 50ms, 1s (default 50ms; needs --retry).")
@remote_options
@click.pass_context
def feed(ctx, pool, data, tags, file, in_mode, errors, durability, create, create_size, retry, retry_delay,
         token, token_file, tls_ca, tls_skip_verify):
    """Append JSON messages to POOL.

    DATA is one inline JSON value. Without DATA, --file or piped stdin supply a
    stream of values, each stored as one message.
    """
    from ..feeding import run_feed

    return run_feed(get_state(ctx), pool, data, tags=tags, file=file, in_mode=in_mode, errors=errors,
                    durability=durability, create=create, create_size=create_size, retry=retry,
                    retry_delay=retry_delay, token=token, token_file=token_file, tls_ca=tls_ca,
                    tls_skip_verify=tls_skip_verify)
