"""``pls serve`` (run the server), ``pls serve init`` and ``pls serve check``.

The group is contributed to ``pls`` through the ``register_commands`` hook
(see ``plugin.py``) and also runs alone as ``python -m plasmite_serve`` or
``plasmite-serve``. Configuration is validated by ``config.resolve`` before
anything binds, so ``check`` and ``serve`` refuse exactly the same things.
The server is uvicorn (httptools + uvloop when installed), one process, one
event loop: tail and storage budgets are per process, so workers are not
multiplied behind the user's back.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import click

from plasmite_core.errors import IoError, PlasmiteError, UsageError

from .config import (
    ACCESS_MODES,
    DEFAULT_BIND,
    DEFAULT_BODY_TIMEOUT_MS,
    DEFAULT_HEAD_TIMEOUT_MS,
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_POOL_BYTES,
    DEFAULT_MAX_TAIL_CONCURRENCY,
    DEFAULT_MAX_TAIL_TIMEOUT_MS,
    ResolvedConfig,
    ServeConfig,
    display_host,
    format_hostport,
    is_loopback,
    is_unspecified,
    resolve,
    scope_label,
)

from .serve_init import init
from ._uvicorn import effective_max_connections, graceful_server_class, protocol_class, raise_descriptor_limit

READY_FILE_ENV = "PLASMITE_SERVE_READY_FILE"

SERVE_EPILOG = """\b
Examples:
  pls serve                                   # loopback, no auth, no TLS
  pls serve --token-file ./token --access read-only
  pls serve --tls-self-signed
  pls serve init --output-dir ./.plasmite-serve
  pls serve --bind 0.0.0.0:9700 check --json

\b
Notes:
  - Serve options go before `check`; `init` has its own options.
  - Non-loopback binds need --allow-non-loopback; with write access they also
    need --token-file and TLS (or --insecure-no-tls for demos).
  - With a token, clients must send it: pls takes --token-file FILE, HTTP
    clients send `Authorization: Bearer <token>`.
  - Host must name the server (add --allowed-host NAME for DNS names); state
    changes from other browser origins need --cors-origin; JSON bodies need
    Content-Type: application/json.
  - A missing pool directory is created (empty) at start.
  - The web UI is at /ui; the OpenAPI document at /openapi.json; MCP for AI
    agents at /mcp (with plasmite-mcp installed).
  - SIGTERM or Ctrl-C stops it gracefully (open tails end cleanly); exit 0.
"""


def _pool_dir_from(ctx: click.Context, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    root = ctx.find_root()
    value = root.params.get("pool_dir") if root is not ctx else None
    if value:
        return value
    obj = root.obj
    pool_dir = getattr(obj, "pool_dir", None)
    if pool_dir:
        return str(pool_dir)
    return None


@click.group(
    name="serve",
    invoke_without_command=True,
    epilog=SERVE_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--bind", default=DEFAULT_BIND, show_default=True, metavar="HOST:PORT", help="Address to listen on.")
@click.option("--dir", "serve_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Pool directory to serve (default: the global --dir, $PLASMITE_DIR or ~/.plasmite/pools).")
@click.option("--backend", metavar="URL",
              help="Serve the pools of a transport's server instead of a directory, e.g. redis://host:6379 "
                   "(plasmite-redis): replicas on several hosts then share the same pools.")
@click.option("--access", type=click.Choice(ACCESS_MODES), default="read-write", show_default=True,
              help="Which operations clients may perform.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Allow browser requests from this exact origin (repeatable; no wildcards).")
@click.option("--token", default=None, metavar="TOKEN", help="Bearer token clients must send (development; prefer --token-file).")
@click.option("--token-file", default=None, metavar="PATH", type=click.Path(dir_okay=False),
              help="Read the bearer token from a file.")
@click.option("--tls-cert", default=None, metavar="PATH", type=click.Path(dir_okay=False),
              help="TLS certificate (PEM; needs --tls-key).")
@click.option("--tls-key", default=None, metavar="PATH", type=click.Path(dir_okay=False),
              help="TLS private key (PEM; needs --tls-cert).")
@click.option("--tls-self-signed", is_flag=True, help="Serve HTTPS with a certificate generated at start-up.")
@click.option("--allow-non-loopback", is_flag=True, help="Allow binding an address reachable from other machines.")
@click.option("--insecure-no-tls", is_flag=True, help="Allow non-loopback write access without TLS (demos only).")
@click.option("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, show_default=True,
              help="Largest request body accepted (413 beyond).")
@click.option("--max-tail-timeout-ms", type=int, default=DEFAULT_MAX_TAIL_TIMEOUT_MS, show_default=True,
              help="Longest tail stream a client may request (and the default).")
@click.option("--max-tail-concurrency", type=int, default=DEFAULT_MAX_TAIL_CONCURRENCY, show_default=True,
              help="Concurrent tail streams (and storage operations) before answering Busy/423.")
@click.option("--max-pool-bytes", type=int, default=DEFAULT_MAX_POOL_BYTES, show_default=True,
              help="Largest pool a client may create over HTTP (400 Usage beyond).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="HOST",
              help="Also accept requests whose Host header names HOST (repeatable; .example.com covers "
                   "subdomains; * turns the check off). Loopback names and the bound IP are always accepted.")
@click.option("--idle-timeout-ms", type=int, default=DEFAULT_IDLE_TIMEOUT_MS, show_default=True,
              help="Close a keep-alive connection idle this long.")
@click.option("--head-timeout-ms", type=int, default=DEFAULT_HEAD_TIMEOUT_MS, show_default=True,
              help="Close a connection whose request head takes longer (408).")
@click.option("--body-timeout-ms", type=int, default=DEFAULT_BODY_TIMEOUT_MS, show_default=True,
              help="Close a connection whose request body takes longer (408).")
@click.option("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, show_default=True,
              help="Concurrent connections (at most half the descriptor limit); beyond: idle ones are "
                   "closed, else 503.")
@click.option("--lock-timeout-ms", type=int, default=DEFAULT_LOCK_TIMEOUT_MS, show_default=True,
              help="Longest wait for a pool's writer lock held by another process (then Busy/423).")
@click.pass_context
def serve(ctx: click.Context, serve_dir, cors_origins, allowed_hosts, **options) -> None:
    """Serve pools over HTTP (remote protocol v0), with a web UI at /ui."""
    # Every other option is the ServeConfig field of the same name.
    config = ServeConfig(pool_dir=_pool_dir_from(ctx, serve_dir), cors_origins=list(cors_origins),
                         allowed_hosts=list(allowed_hosts), **options)
    ctx.meta["plasmite_serve_config"] = config
    if ctx.invoked_subcommand is None:
        run_server(config)


# -------------------------------------------------------------------- check


def allowed_hosts_label(cfg: ResolvedConfig) -> list[str]:
    """The Host values the server accepts, in words (see guard.HostPolicy)."""
    if "*" in cfg.allowed_hosts:
        return ["* (Host check off)"]
    out = ["localhost", "*.localhost", "loopback IPs"]
    if is_unspecified(cfg.host):
        out.append("any IP address (bound to all interfaces)")
    elif not is_loopback(cfg.host):
        out.append(cfg.host)
    return out + cfg.allowed_hosts


def _auth_label(cfg: ResolvedConfig) -> str:
    if cfg.token is None:
        return "none"
    return "bearer token (--token-file)" if cfg.token_file_used else "bearer token (--token)"


def _pools_label(cfg: ResolvedConfig) -> str:
    """The pool directory, or the --backend URL without credentials."""
    if not cfg.backend:
        return str(cfg.pool_dir)
    head, _, rest = cfg.backend.partition("://")
    return f"{head}://{rest.rpartition('@')[2]}"


def _tls_label(cfg: ResolvedConfig) -> str:
    if cfg.tls_self_signed:
        return "self-signed"
    return "enabled" if cfg.tls is not None else "disabled"


def _mcp_url(base: str) -> str | None:
    """The MCP endpoint when plasmite-mcp is installed (it mounts /mcp)."""
    from plasmite_core import plugins

    try:
        return f"{base}/mcp" if "mcp" in plugins.serve_routes() else None
    except Exception:
        return None


@serve.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the serve options and print the effective endpoints, without binding."""
    config: ServeConfig = ctx.meta["plasmite_serve_config"]
    cfg = resolve(config)
    raise_descriptor_limit()  # as `serve` does, so the effective cap is the one it will use
    connections = effective_max_connections(cfg.max_connections)
    base = cfg.base_url
    fingerprint = cfg.tls.fingerprint if cfg.tls is not None else None
    mcp = _mcp_url(base)
    report = {
        "status": "valid",
        "listen": cfg.listen,
        "scope": scope_label(cfg.host),
        "base_url": base,
        "web_ui": f"{base}/ui",
        "web_ui_pool": f"{base}/ui/pools/demo",
        "openapi": f"{base}/openapi.json",
        "mcp": mcp,
        "pool_dir": str(cfg.pool_dir),
        "pool_dir_exists": cfg.pool_dir.is_dir(),
        "auth": _auth_label(cfg),
        "tls": _tls_label(cfg),
        "tls_fingerprint": fingerprint,
        "access": cfg.access,
        "cors_allowed_origins": cfg.cors_origins,
        "allowed_hosts": allowed_hosts_label(cfg),
        "limits": {
            "max_body_bytes": cfg.max_body_bytes,
            "max_tail_timeout_ms": cfg.max_tail_timeout_ms,
            "max_tail_concurrency": cfg.max_tail_concurrency,
            "max_pool_bytes": cfg.max_pool_bytes,
            "idle_timeout_ms": cfg.idle_timeout_ms,
            "head_timeout_ms": cfg.head_timeout_ms,
            "body_timeout_ms": cfg.body_timeout_ms,
            "max_connections": cfg.max_connections,
            "max_connections_effective": connections,
            "lock_timeout_ms": cfg.lock_timeout_ms,
        },
    }
    if as_json:
        click.echo(json.dumps({"check": report}, indent=2))
        return
    cors = ", ".join(cfg.cors_origins) if cfg.cors_origins else "same-origin only"
    lines = [
        "Configuration valid.",
        "",
        f"  Bind:    {cfg.listen} ({report['scope']})",
        f"  URL:     {base}   UI: {base}/ui",
        f"  MCP:     {mcp or 'off (pip install plasmite-mcp)'}",
        f"  Pools:   {cfg.pool_dir}" + ("" if cfg.pool_dir.is_dir() else "  (missing: `pls serve` creates it, empty)"),
        f"  Auth: {report['auth']}    TLS: {report['tls']}    Access: {cfg.access}",
        f"  CORS:    {cors}",
        f"  Hosts:   {', '.join(report['allowed_hosts'])}",
        f"  Limits:  body {cfg.max_body_bytes} bytes, tail timeout {cfg.max_tail_timeout_ms} ms, "
        f"concurrency {cfg.max_tail_concurrency}, pool size {cfg.max_pool_bytes} bytes",
        f"  Timeouts: idle {cfg.idle_timeout_ms} ms, head {cfg.head_timeout_ms} ms, body {cfg.body_timeout_ms} ms, "
        f"lock {cfg.lock_timeout_ms} ms; connections {connections}"
        + (f" (of {cfg.max_connections}: half the descriptor limit)" if connections < cfg.max_connections else ""),
    ]
    if fingerprint:
        lines.append(f"  Fingerprint: {fingerprint}")
    elif cfg.tls_self_signed:
        lines.append("  Fingerprint: generated at start-up (printed by `pls serve`)")
    click.echo("\n".join(lines))


# --------------------------------------------------------------------- init

serve.add_command(init)  # serve_init.py


# ---------------------------------------------------------------------- run


def _bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "choose another port with --bind" if exc.errno == 98 else "check the address with `ip addr`"
        raise IoError(f"failed to bind {format_hostport(host, port)}: {exc.strerror or exc}", hint=hint) from None
    sock.set_inheritable(True)
    return sock


def _ensure_pool_dir(path: Path) -> bool:
    """Create a missing pool directory before binding (True if it was created), so a
    typo'd ``--dir`` is visible at start and a permission problem fails at once."""
    if path.is_dir():
        return False
    if path.exists():
        raise UsageError(f"pool directory is not a directory: {path}", hint="give --dir a directory")
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as exc:
        from plasmite_core.errors import from_os_error

        raise from_os_error(exc, str(path), action="create pool directory") from None
    return True


def _banner(cfg: ResolvedConfig, port: int, verbose: bool) -> str:
    base = f"{cfg.scheme}://{format_hostport(display_host(cfg.host), port)}"
    if not verbose:
        extra = f" fingerprint {cfg.tls.fingerprint}" if cfg.tls is not None else ""
        return f"plasmite serve: listening on {base} ({scope_label(cfg.host)}){extra}"
    auth = "bearer" if cfg.token else "none"
    tls = "self-signed" if cfg.tls_self_signed else ("on" if cfg.tls is not None else "off")
    cors = "allowlist" if cfg.cors_origins else "same-origin"
    flags = ""
    if cfg.token:
        flags += " --token-file <token-file>" if cfg.token_file_used else " --token <token>"
    if cfg.tls is not None:
        flags += " --tls-ca <tls-cert>"
    lines = [
        f"Serving pools from {_pools_label(cfg)} on {base} ({scope_label(cfg.host)})",
        "",
        f"  UI:   {base}/ui" + ("   (enter the token in the page, or open /ui?token=<token>)" if cfg.token else ""),
        f"  Auth: {auth}    TLS: {tls}    Access: {cfg.access}    CORS: {cors}",
    ]
    if _mcp_url(base):
        lines.insert(3, f"  MCP:  {base}/mcp   (MCP for AI agents, see docs/mcp.md)")
    if cfg.tls is not None:
        lines.append(f"  Fingerprint: {cfg.tls.fingerprint}")
    lines += [
        "",
        "Try it:",
        f"  pls feed {base}/demo --create{flags} '{{\"hello\":\"world\"}}'",
        f"  pls follow {base}/demo{flags} --tail 10",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def run_server(config: ServeConfig) -> None:
    """Validate, bind, print the banner and serve until SIGINT/SIGTERM (then exit 0)."""
    import uvicorn

    from .app import PlasmiteApp

    tmp = tempfile.mkdtemp(prefix="plasmite-serve-") if config.tls_self_signed else None
    try:
        cfg = resolve(config, self_signed_dir=Path(tmp) if tmp else None)
        raise_descriptor_limit()
        protocol = protocol_class(idle_timeout_ms=cfg.idle_timeout_ms, head_timeout_ms=cfg.head_timeout_ms,
                                  body_timeout_ms=cfg.body_timeout_ms,
                                  max_connections=effective_max_connections(cfg.max_connections))
        if protocol is None:
            raise IoError("the server needs httptools (its slow-connection guards are built on it)",
                          hint="pip install httptools (uvicorn[standard] includes it)")
        created_dir = _ensure_pool_dir(cfg.pool_dir)
        app = PlasmiteApp(cfg)
        sock = _bind_socket(cfg.host, cfg.port)
        port = sock.getsockname()[1]
        if created_dir:
            click.echo(f"plasmite serve: pool directory {cfg.pool_dir} did not exist; created it (empty: "
                       "create pools with `pls pool create URL/NAME`, `pls feed URL/NAME --create` or the web UI)",
                       err=True)
        click.echo(_banner(cfg, port, sys.stderr.isatty()), err=True)
        ready = os.environ.get(READY_FILE_ENV)
        if ready:  # after the banner: a reader of the ready file finds the start-up messages complete
            tmp_ready = ready + ".tmp"
            Path(tmp_ready).write_text(format_hostport(cfg.host, port))
            os.replace(tmp_ready, ready)
        uv_config = uvicorn.Config(
            app,
            http=protocol,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            proxy_headers=False,
            timeout_keep_alive=cfg.idle_timeout_ms / 1000.0,
            timeout_graceful_shutdown=3,
            ssl_certfile=str(cfg.tls.cert_path) if cfg.tls else None,
            ssl_keyfile=str(cfg.tls.key_path) if cfg.tls else None,
        )
        # SIGTERM/SIGINT: open tails end within one slice, then a graceful stop and exit 0.
        server = graceful_server_class(app.begin_shutdown)(uv_config)
        try:
            server.run(sockets=[sock])
        finally:
            app.close()
            sock.close()
        if not server.started:
            raise IoError("server failed to start", hint="see the messages above")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------- standalone


def render_error(err: PlasmiteError) -> None:
    if sys.stderr.isatty():
        text = f"error: {err.message}"
        if err.hint:
            text += f"\nhint: {err.hint}"
        click.echo(text, err=True)
    else:
        click.echo(json.dumps({"error": err.to_dict()}), err=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m plasmite_serve`` / ``plasmite-serve``: the serve group on its own."""
    try:
        serve.main(args=argv, prog_name="plasmite-serve", standalone_mode=False)
    except PlasmiteError as err:
        render_error(err)
        sys.exit(err.kind.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        render_error(UsageError(exc.format_message(), hint="see `plasmite-serve --help`"))
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # no traceback reaches a user
        from plasmite_core.errors import InternalError

        render_error(InternalError(f"internal error: {type(exc).__name__}: {exc}", hint="this is a bug; please report it"))
        sys.exit(1)
    sys.exit(0)
