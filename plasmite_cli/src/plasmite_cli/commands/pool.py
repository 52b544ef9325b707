"""``pls pool create|info|list|delete|import``: manage pool files.

Human output is a short table or summary; ``--json`` gives the stable machine
shape (pool info as in upstream's pool-info JSON). ``delete`` is best effort:
it tries every name and exits with the kind of the first failure. A URL of a
transport other than http(s) (``redis://host:port/NAME``) names a pool on
that server and is managed through its transport's client.
"""

from __future__ import annotations

import click

from plasmite_core.refs import is_url

from ..output import emit_json, human_age, human_bytes, table, write_out
from .common import complete_pool, get_state, remote_options


@click.group(
    epilog="""\b
Examples:
  pls pool create chat
  pls pool create --size 8M logs metrics
  pls pool info chat --json
  pls pool list
  pls pool delete chat logs
  pls pool import chat          # convert an upstream Plasmite pool

\b
Pools live in ~/.plasmite/pools unless --dir DIR (or PLASMITE_DIR) says
otherwise; put --dir before the command: pls --dir ./pools pool list""",
    short_help="Create, inspect, list and delete pools.",
    no_args_is_help=True,
)
def pool():
    """Manage pool files (persistent ring buffers of JSON messages)."""


def _local_only(ref: str, what: str) -> None:
    from plasmite_core.errors import UsageError

    if is_url(ref):
        raise UsageError(f"pool {what} accepts local pool names or paths only",
                         hint="manage remote pools on the server that hosts them")


def _client_for(state, ref: str, what: str, remote: dict | None = None):
    """(client, ref for that client): the local client, or a transport's for a URL.

    ``remote`` holds the remote flags, passed through to the transport."""
    from plasmite_core.errors import UsageError

    from .. import targets

    if not targets.is_url(ref):
        return state.client(), ref
    if targets.is_http(ref):
        raise UsageError(f"pool {what} does not take http(s) refs",
                         hint="manage remote pools on the server that hosts them")
    client, name = targets.transport_client(ref, **(targets.remote_options(**remote) if remote else {}))
    if not name:
        raise UsageError(f"no pool named in {targets.redact(ref)}", hint="append the pool name: scheme://host:port/POOL")
    return client, name


@pool.command(
    "create",
    epilog="""\b
Examples:
  pls pool create chat
  pls pool create --size 8M bar baz
  pls pool create --size 64M --index-capacity 65536 events
  pls pool create --codec msgpack metrics
  pls pool create --json chat
  pls pool create --size 64M redis://127.0.0.1:6379/events   # plasmite-redis
  pls pool create http://127.0.0.1:9700/demo     # on a `pls serve` server

\b
Sizes take K/M/G/T suffixes (1024-based); the default is 1M, a pool is 64K
to 1T. An index with more slots than the ring can hold messages is a usage
error (the default indexes every message). The codec is how payloads are
stored; every codec reads and writes the same JSON messages. A URL NAME
creates the pool on that server (if its access mode allows writes), with
--size and the server's defaults.""",
    short_help="Create one or more pools.",
)
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--size", metavar="SIZE", help="Pool file size: bytes or K/M/G/T (default 1M).")
@click.option("--index-capacity", type=click.IntRange(min=0), metavar="N",
              help="Slots of the seq index (default: sized from the pool; 0 disables).")
@click.option("--codec", default="json", show_default=True, metavar="NAME",
              help="Payload codec: json, msgpack, lite3 (plasmite-codecs) or a plugin's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@remote_options
@click.pass_context
def create(ctx, names, size, index_capacity, codec, as_json, token, token_file, tls_ca, tls_skip_verify):
    """Create pools NAME... (AlreadyExists if one exists)."""
    from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES
    from plasmite_core.errors import ErrorKind, PlasmiteError

    from .. import targets
    from ..parsing import parse_size

    size_bytes = parse_size(size) if size is not None else DEFAULT_POOL_SIZE_BYTES
    remote = {"token": token, "token_file": token_file, "tls_ca": tls_ca, "tls_skip_verify": tls_skip_verify}
    if not any(targets.is_url(n) for n in names):
        targets.reject_remote_flags("pool create", **remote)
    state = get_state(ctx)
    created = []
    for name in names:
        if targets.is_http(name):
            client, ref = None, name
        else:
            client, ref = _client_for(state, name, "create", remote)
        try:
            if client is None:
                info = _create_remote(name, size_bytes, index_capacity, codec, remote)
            else:
                p = client.create_pool(ref, size_bytes, index_capacity=index_capacity, codec=codec)
                try:
                    info = p.info()
                finally:
                    p.close()
        except PlasmiteError as err:
            if err.kind == ErrorKind.ALREADY_EXISTS:
                err.message = f"pool already exists: {ref}"
                err.hint = "choose another name or use the existing pool" + (
                    "" if client is None else ", or `pls pool delete` it first")
            raise
        d = info.to_dict()
        d["name"] = ref
        created.append(d)
    if as_json:
        emit_json({"created": created})
    else:
        rows = [[d["name"], human_bytes(d["file_size"]), str(d["index_capacity"]), d["path"]] for d in created]
        write_out(table(["NAME", "SIZE", "INDEX", "PATH"], rows))
    return 0


def _create_remote(ref: str, size_bytes: int, index_capacity, codec: str, remote: dict):
    """Create a pool on a server (POST /v0/pools) and return its info."""
    from plasmite_core.errors import PlasmiteError, UsageError

    from .. import targets

    for flag, used in (("--index-capacity", index_capacity is not None), ("--codec", codec != "json")):
        if used:
            raise UsageError(f"{flag} applies to local pools only",
                             hint=f"a server creates pools with its default index and the json codec; drop {flag}")
    client, _base, name = targets.remote_client(ref, **remote)
    try:
        return client.create_pool(name, size_bytes).info()
    except PlasmiteError as err:
        targets.cli_hint(err, ref, "pool create")
        raise
    finally:
        client.close()


@pool.command(
    "info",
    epilog="""\b
Examples:
  pls pool info chat
  pls pool info chat --json | jq .metrics.message_count""",
    short_help="Show a pool's size, bounds and metrics.",
)
@click.argument("name", metavar="NAME", shell_complete=complete_pool)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def info(ctx, name, as_json):
    """Show size, retained seq range and usage of pool NAME."""
    from plasmite_core.errors import ErrorKind, PlasmiteError

    client, ref = _client_for(get_state(ctx), name, "info")
    try:
        pinfo = client.pool_info(ref)
    except PlasmiteError as err:
        if err.kind == ErrorKind.NOT_FOUND:
            err.message = f"pool not found: {ref}"
            err.hint = "`pls pool list` shows existing pools; `pls pool create NAME` makes one"
        raise
    d = pinfo.to_dict()
    if as_json:
        emit_json(d)
        return 0
    m = d["metrics"]
    u = m["utilization"]
    age = m["age"]
    bounds = d["bounds"]
    seqs = f"{bounds['oldest']}..{bounds['newest']}" if bounds else "empty"
    lines = [
        f"Pool:     {ref}",
        f"Path:     {d['path']}",
        f"Size:     {human_bytes(d['file_size'])} (ring {human_bytes(d['ring_size'])}, "
        f"index {d['index_capacity']} slots)",
        f"Messages: {m['message_count']} (seq {seqs})",
        f"Used:     {human_bytes(u['used_bytes'])} of ring ({u['used_percent']}%)",
        f"Oldest:   {human_age(age['oldest_age_ms'])}" + (f" ({age['oldest_time']})" if age["oldest_time"] else ""),
        f"Newest:   {human_age(age['newest_age_ms'])}" + (f" ({age['newest_time']})" if age["newest_time"] else ""),
        f"Codec:    {d.get('codec', 'json')} (format v{d.get('format_version', '?')})",
    ]
    write_out("\n".join(lines) + "\n")
    return 0


@pool.command(
    "list",
    epilog="""\b
Examples:
  pls pool list
  pls pool list --json | jq -r '.pools[].name'

\b
Files not ending in .plasmite are ignored. A pool that cannot be read is
listed with STATUS ERR and the reason in DETAIL (in JSON: an "error" entry
holding the error envelope); readable pools show OK. Hidden temp files that
killed `pool create` runs left behind are removed (`pls doctor` reports
them).""",
    short_help="List pools in the pool directory.",
)
@click.argument("server", metavar="[SERVER]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_(ctx, server, as_json):
    """List the pools in the pool directory, or on SERVER (e.g. redis://host:6379)."""
    from plasmite_core.envelope import format_rfc3339
    from plasmite_core.errors import PlasmiteError
    from plasmite_core.refs import pool_files

    from ..output import error_dict

    state = get_state(ctx)
    if server is not None:
        return _list_server(state, server, as_json)
    client = state.client()
    client.sweep_leftovers()
    pools = []
    for name, p in pool_files(state.pool_dir):
        try:
            d = client.pool_info(str(p)).to_dict()
            d["name"] = name
            try:
                d["mtime"] = format_rfc3339(p.stat().st_mtime_ns)
            except OSError:
                d["mtime"] = None
        except PlasmiteError as err:
            # upstream's entry for an unreadable pool: the error envelope under "error"
            d = {"name": name, "path": str(p), "error": {"error": error_dict(err)}}
        pools.append(d)
    return _show_pools(pools, as_json, f"in {state.pool_dir}", "NAME")


def _show_pools(pools: list[dict], as_json: bool, where: str, create_ref: str) -> int:
    """`pool list`'s output for pool-info dicts, local or from a server."""
    if as_json:
        emit_json({"pools": pools})
        return 0
    if not pools:
        write_out(f"No pools {where}.\nCreate one: pls pool create {create_ref}\n")
        return 0
    rows = []
    for d in pools:
        if "error" in d:
            rows.append([d["name"], "ERR", "-", "-", "-", "-", d["error"]["error"]["message"]])
            continue
        m = d["metrics"]
        rows.append([d["name"], "OK", human_bytes(d["file_size"]), str(m["message_count"]),
                     f"{m['utilization']['used_percent']}%", human_age(m["age"]["newest_age_ms"]), ""])
    write_out(table(["NAME", "STATUS", "SIZE", "MESSAGES", "USED", "LAST WRITE", "DETAIL"], rows))
    return 0


@pool.command(
    "import",
    epilog="""\b
Examples:
  pls pool import chat                  # convert ~/.plasmite/pools/chat.plasmite in place
  pls pool import ./old/chat.plasmite chat
  pls pool import chat chat2 --size 8M --json

\b
SOURCE is a pool file written by upstream Plasmite (format 3), given by name
or path. Every retained message keeps its seq, time, tags and data, and new
appends continue its numbering. Without NAME, or when NAME is SOURCE itself,
the file is converted in place and the original is kept beside it as
NAME.plasmite.upstream-v3.bak. The new pool has the source's file size
unless --size says otherwise (a smaller pool keeps the newest messages that
fit and says how many it dropped). Needs the lite3 codec (plasmite-codecs).""",
    short_help="Convert an upstream Plasmite pool file into this format.",
)
@click.argument("source", metavar="SOURCE", shell_complete=complete_pool)
@click.argument("name", metavar="[NAME]", required=False)
@click.option("--size", metavar="SIZE", help="Size of the new pool: bytes or K/M/G (default: the source's).")
@click.option("--index-capacity", type=click.IntRange(min=0), metavar="N",
              help="Slots of the seq index (default: sized from the pool).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def import_(ctx, source, name, size, index_capacity, as_json):
    """Convert the upstream pool SOURCE into pool NAME (default: in place)."""
    from plasmite_core.refs import resolve_pool_ref
    from plasmite_core.upstream import import_pool

    from ..parsing import parse_size

    _local_only(source, "import")
    state = get_state(ctx)
    src = resolve_pool_ref(source, state.pool_dir)
    if name is not None:
        _local_only(name, "import")
    dest = src if name is None else resolve_pool_ref(name, state.pool_dir)
    size_bytes = parse_size(size) if size is not None else None
    rep = import_pool(src, dest, size_bytes, index_capacity, source_ref=source)
    out = {"source": rep.source, "pool": name or source, "path": rep.path, "messages": rep.messages,
           "first_seq": rep.first_seq, "last_seq": rep.last_seq, "dropped_oldest": rep.dropped_oldest,
           "backup": rep.backup}
    if as_json:
        emit_json({"imported": out})
        return 0
    seqs = f"seq {rep.first_seq}..{rep.last_seq}" if rep.messages else "no messages"
    lines = [f"imported {out['pool']}: {rep.messages} messages ({seqs})", f"  path: {rep.path}"]
    if rep.backup:
        lines.append(f"  original kept as {rep.backup}")
    if rep.dropped_oldest:
        lines.append(f"  dropped the {rep.dropped_oldest} oldest messages that did not fit; use a larger --size to keep them")
    write_out("\n".join(lines) + "\n")
    return 0


def _list_server(state, server: str, as_json: bool) -> int:
    """``pls pool list redis://host:port``: the pools of a transport's server."""
    from plasmite_core.errors import UsageError

    from .. import targets

    if not targets.is_url(server) or targets.is_http(server):
        raise UsageError(f"pool list takes a server URL such as redis://host:6379, not {targets.redact(server)!r}",
                         hint="omit it to list the pool directory; list http servers with GET /v0/pools")
    client, name = targets.transport_client(server)
    if name:
        raise UsageError("pool list takes a server URL without a pool name",
                         hint=f"drop /{name} from the URL")
    pools = [info.to_dict() for info in client.list_pools()]
    return _show_pools(pools, as_json, f"on {targets.redact(server)}", f"{targets.redact(server)}/NAME")


@pool.command(
    "delete",
    epilog="""\b
Examples:
  pls pool delete chat
  pls pool delete --json a b c

\b
Deletes every named pool it can and reports each failure; exits non-zero
(with the first failure's kind) if any deletion failed. This cannot be
undone.""",
    short_help="Delete one or more pools.",
)
@click.argument("names", nargs=-1, required=True, metavar="NAME...", shell_complete=complete_pool)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def delete(ctx, names, as_json):
    """Delete pools NAME... (destructive)."""
    from plasmite_core.errors import ErrorKind, PlasmiteError
    from plasmite_core.refs import resolve_pool_ref

    from .. import targets
    from ..output import error_dict

    state = get_state(ctx)
    client = state.client()
    deleted, failed = [], []
    first_kind = None
    for name in names:
        shown = targets.redact(name)
        try:
            target, ref = _client_for(state, name, "delete")
            path = shown if target is not client else resolve_pool_ref(name, state.pool_dir)
            try:
                target.delete_pool(ref)
            except PlasmiteError as err:
                if err.kind == ErrorKind.NOT_FOUND:
                    err.message = f"pool not found: {shown}"
                    err.hint = "nothing to delete; `pls pool list` shows existing pools"
                    err.path = str(path)
                raise
            deleted.append({"pool": shown, "path": str(path)})
        except PlasmiteError as err:
            first_kind = first_kind or err.kind
            failed.append({"pool": shown, "error": error_dict(err)})
    if as_json:
        emit_json({"deleted": deleted, "failed": failed})
    else:
        lines = [f"deleted {d['pool']}" for d in deleted]
        lines += [f"failed  {f['pool']}: {f['error']['message']}" for f in failed]
        write_out("\n".join(lines) + "\n")
    return int(first_kind) if first_kind is not None else 0
