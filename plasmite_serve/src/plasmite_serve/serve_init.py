"""``pls serve init``: a token, a TLS certificate and its key, and the commands that use them.

Kept apart from ``cli.py`` (the server's own options and start-up): init
writes files and prints instructions, and shares only the parsed ``serve``
options it refuses to take.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from plasmite_core.errors import AlreadyExistsError, IoError, UsageError

from .config import (
    ServeConfig,
    format_hostport,
    generate_self_signed,
    generate_token,
    host_names,
    is_loopback,
    is_unspecified,
    parse_bind,
    write_private,
)


def _quote(value: str) -> str:
    return shlex.quote(value)


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


@click.command("init")
@click.option("--bind", default="0.0.0.0:9700", show_default=True, metavar="HOST:PORT",
              help="Bind address used in the printed commands (and added to the certificate).")
@click.option("--output-dir", default=".", show_default=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Directory for the generated files.")
@click.option("--token-file", default="plasmite-auth-token.txt", show_default=True, metavar="PATH",
              help="Token file (relative to --output-dir unless absolute).")
@click.option("--tls-cert", default="plasmite-tls-cert.pem", show_default=True, metavar="PATH",
              help="Certificate file (relative to --output-dir unless absolute).")
@click.option("--tls-key", default="plasmite-tls-key.pem", show_default=True, metavar="PATH",
              help="Private key file (relative to --output-dir unless absolute).")
@click.option("--san", "sans", multiple=True, metavar="NAME",
              help="Also valid for this DNS name or IP (repeatable); the bind IP, or this host's name and "
                   "addresses for 0.0.0.0, are added by default.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default when stdout is not a terminal).")
@click.pass_context
def init(ctx: click.Context, bind, output_dir, token_file, tls_cert, tls_key, sans, force, as_json) -> None:
    """Generate a token, a TLS certificate and its key; print the fingerprint and next commands.

    The token itself is never printed: it stays in its file (mode 0600).
    """
    parent: ServeConfig = ctx.meta["plasmite_serve_config"]
    defaults = ServeConfig()
    for flag, value, default in (
        ("--bind", parent.bind, defaults.bind),
        ("--token", parent.token, None),
        ("--token-file", parent.token_file, None),
        ("--tls-cert", parent.tls_cert, None),
        ("--tls-key", parent.tls_key, None),
        ("--access", parent.access, defaults.access),
        ("--cors-origin", parent.cors_origins, []),
        ("--tls-self-signed", parent.tls_self_signed, False),
        ("--allow-non-loopback", parent.allow_non_loopback, False),
    ):
        if value != default:
            raise UsageError(
                f"`serve init` does not use the serve option {flag}",
                hint=f"put {flag} after `init` if init has it, or drop it",
            )
    host, port = parse_bind(bind)
    out_dir = Path(output_dir).expanduser().absolute()
    paths = [out_dir / Path(p).expanduser() for p in (token_file, tls_cert, tls_key)]
    if len({str(p) for p in paths}) != 3:
        raise UsageError("token, certificate and key paths must be distinct",
                         hint="give different --token-file, --tls-cert and --tls-key")
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise AlreadyExistsError(
            f"serve init artifact already exists: {existing[0]}", str(existing[0]),
            hint="re-run with --force to overwrite, or choose another --output-dir",
        )
    token_path, cert_path, key_path = paths
    names = host_names(host, list(sans))  # validates --san before anything is written
    try:
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
        write_private(token_path, (generate_token() + "\n").encode())
        cert_pem, key_pem, fingerprint = generate_self_signed(host, list(sans))
        cert_path.write_bytes(cert_pem)
        write_private(key_path, key_pem)
    except OSError as exc:
        raise IoError(f"cannot write serve init artifacts: {exc.strerror or exc}", exc.filename,
                      hint="check that --output-dir is writable") from None

    if is_loopback(host):
        client_host = host
    elif not is_unspecified(host):
        client_host = host
    else:
        # Clients on other machines dial this host by one of the certificate's names.
        ips = [n for n in names if _is_ip(n)]
        client_host = (list(sans) or ips or names or ["YOUR-HOST"])[0]
    base = f"https://{format_hostport(client_host, port)}"
    t, c, k = (_quote(str(p)) for p in paths)
    server_cmd = (
        f"pls serve --bind {format_hostport(host, port)}"
        + ("" if is_loopback(host) else " --allow-non-loopback")
        + f" --token-file {t} --tls-cert {c} --tls-key {k}"
        # Clients that dial a DNS name send it as Host: the server must accept it (DNS rebinding guard).
        + "".join(f" --allowed-host {_quote(n)}" for n in sans if not _is_ip(n))
    )
    feed_cmd = f"pls feed {base}/demo --create --token-file {t} --tls-ca {c} '{{\"hello\":\"world\"}}'"
    follow_cmd = f"pls follow {base}/demo --token-file {t} --tls-ca {c} --tail 10"
    curl_append = (
        f"curl --cacert {c} -sS -X POST -H \"Authorization: Bearer $(cat {t})\" "
        f"-H 'content-type: application/json' --data '{{\"data\":{{\"hello\":\"world\"}}}}' "
        f"{base}/v0/pools/demo/append"
    )
    curl_tail = (
        f"curl --cacert {c} -N -sS -H \"Authorization: Bearer $(cat {t})\" "
        f"'{base}/v0/pools/demo/tail?timeout_ms=5000'"
    )
    result = {
        "init": {
            "artifact_paths": {"token_file": str(token_path), "tls_cert": str(cert_path), "tls_key": str(key_path)},
            "tls_fingerprint": fingerprint,
            "tls_names": ["localhost", "127.0.0.1", "::1", *names],
            "overwrote_existing": bool(existing),
            "server_commands": [server_cmd],
            "client_commands": [feed_cmd, follow_cmd],
            "curl_client_commands": [curl_append, curl_tail],
        }
    }
    if as_json or not sys.stdout.isatty():
        click.echo(json.dumps(result, indent=2))
        return
    click.echo("\n".join([
        "Secure serving initialized." if not existing else "Secure serving re-initialized.",
        "",
        "  Files (token and key are readable by you only):",
        f"    token   {token_path}",
        f"    cert    {cert_path}",
        f"    key     {key_path}",
        "",
        "  TLS fingerprint (share it with clients to verify the certificate):",
        f"    {fingerprint}",
        f"  Certificate valid for: {', '.join(result['init']['tls_names'])}",
        "",
        "  Start the server:",
        f"    {server_cmd}",
        "",
        "  From a client (copy the token and certificate over first):",
        f"    {feed_cmd}",
        f"    {follow_cmd}",
        "",
        "  Or with curl:",
        f"    {curl_append}",
        f"    {curl_tail}",
        "",
        "  The token is in its file, not printed here; share it out-of-band.",
    ]))
