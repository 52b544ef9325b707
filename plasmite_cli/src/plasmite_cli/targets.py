"""Resolve a command's POOL argument to an open pool, local or remote.

Local refs follow the core's rules (``plasmite_core.refs``). A URL ref
(``scheme://host:port/NAME``) is handed to the transport that a plugin
registered for its scheme (plasmite-serve provides http/https, plasmite-redis
redis/rediss); without one the user gets a Usage error saying what to install.
HTTP pools have the remote protocol's limits (no --since, --replay, tap or
`pool list SERVER`); any other transport offers the whole local pool surface, so
commands treat its pools like local ones (``open_pool``). Errors carry hints
that name the exact command to run next, and never credentials.
"""

from __future__ import annotations

from typing import Any

from plasmite_core.errors import ErrorKind, PlasmiteError, UsageError
from plasmite_core.refs import is_url


def is_http(ref: str) -> bool:
    """An http(s) pool ref: served by the remote protocol, with its limits."""
    return ref[:8].lower().startswith(("http://", "https://"))


def redact(ref: str) -> str:
    """``ref`` with any ``user:password@`` replaced, for messages."""
    head, sep, rest = ref.partition("://")
    at = rest.rfind("@", 0, rest.find("/") if "/" in rest else len(rest))
    return f"{head}{sep}***@{rest[at + 1:]}" if sep and at >= 0 else ref


def split_url(ref: str, *, allow_empty_name: bool = False) -> tuple[str, str, str]:
    """``http://host:9700/chat`` → (scheme, base URL, pool name).

    Non-http transports keep their query string (``?db=2``) in the base URL.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(ref)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        parts = urlsplit("")
    scheme = parts.scheme.lower()
    path = parts.path
    name = path[1:] if path.startswith("/") else path
    http = scheme in ("http", "https")
    if (
        not parts.netloc
        or (not name and not allow_empty_name)
        or "/" in name
        or (parts.query and http)
        or parts.fragment
    ):
        raise UsageError(
            f"invalid remote pool ref: {redact(ref)}",
            hint="use the shorthand scheme://host:port/POOL, e.g. http://127.0.0.1:9700/chat "
            "(no trailing slash, no API path)",
        )
    query = f"?{parts.query}" if parts.query else ""
    return scheme, f"{scheme}://{parts.netloc}{query}", name


_PROVIDERS = {"http": "plasmite-serve", "https": "plasmite-serve",
              "redis": "plasmite-redis", "rediss": "plasmite-redis"}
_clients: dict[tuple, Any] = {}
_warned: list[bool] = []  # the --tls-skip-verify warning is printed once per process


def transport_client(ref: str, **opts: Any) -> tuple[Any, str]:
    """(client, pool name) for a URL ref, through its scheme's transport.

    Non-http clients are shared per server in this process (they pool their
    connections); http handles keep one connection each."""
    scheme, base, name = split_url(ref, allow_empty_name=True)
    from plasmite_core import plugins

    try:
        factory = plugins.transport(scheme)
    except UsageError:
        dist = _PROVIDERS.get(scheme)
        if dist is not None:
            hint = f"install {dist} (pip install {dist}), which provides {scheme}:// pool refs"
        else:
            hint = f"no installed plugin handles {scheme}:// refs; `pls plugins` lists what is installed"
        raise UsageError(f"no transport for {scheme}:// pool refs is installed", hint=hint) from None
    if scheme in ("http", "https"):
        return factory(base, **opts), name
    key = (base, tuple(sorted(opts.items())))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = factory(base, **opts)
    return client, name


def open_pool(state, ref: str, cmd: str, *, create: bool = False, create_size: int | None = None,
              can_create: bool = True, token: str | None = None, token_file: str | None = None,
              tls_ca: str | None = None, tls_skip_verify: bool = False):
    """A local pool, or a pool of a non-http transport, opened (or created) alike.

    The remote flags go to the transport (which refuses those it cannot
    honour); a local ref refuses them all."""
    if not is_url(ref):
        reject_remote_flags(cmd, token, token_file, tls_ca, tls_skip_verify)
        return open_local(state, ref, cmd, create=create, create_size=create_size, can_create=can_create)
    client, name = transport_client(ref, **remote_options(token, token_file, tls_ca, tls_skip_verify))
    if not name:
        raise UsageError(f"no pool named in {redact(ref)}", hint="append the pool name: scheme://host:port/POOL")
    from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES

    try:
        if create:
            return client.pool(name, create_size or DEFAULT_POOL_SIZE_BYTES)
        return client.open_pool(name)
    except PlasmiteError as err:
        if err.kind == ErrorKind.NOT_FOUND and err.seq is None:
            import shlex

            err.hint = (f"create it with `pls pool create {shlex.quote(redact(ref))}`"
                        + (f" or add --create to `pls {cmd}`" if can_create else ""))
        raise


def remote_options(token: str | None, token_file: str | None, tls_ca: str | None,
                   tls_skip_verify: bool) -> dict[str, Any]:
    """The transport options of the remote flags that were given."""
    opts: dict[str, Any] = {}
    if token_file:
        from plasmite_core.tokens import read_token_file

        token = read_token_file(token_file)
    if token:
        opts["token"] = token
    if tls_ca:
        opts["tls_ca"] = tls_ca
    if tls_skip_verify:
        if not _warned:
            from .output import write_err

            write_err("warning: --tls-skip-verify disables TLS certificate verification (unsafe)\n")
            _warned.append(True)
        opts["tls_skip_verify"] = True
    return opts


def remote_client(ref: str, *, token: str | None = None, token_file: str | None = None,
                  tls_ca: str | None = None, tls_skip_verify: bool = False):
    """(client, base URL, pool name) for a URL ref, through the transport registered for its scheme."""
    base = split_url(ref)[1]
    client, name = transport_client(ref, **remote_options(token, token_file, tls_ca, tls_skip_verify))
    return client, base, name


def remote_pool(ref: str, cmd: str, *, token: str | None = None, token_file: str | None = None,
                tls_ca: str | None = None, tls_skip_verify: bool = False, create: bool = False,
                create_size: int | None = None):
    """Open (with ``create``, create if missing) a pool on a server, with hints in CLI terms."""
    client, base, name = remote_client(ref, token=token, token_file=token_file, tls_ca=tls_ca,
                                       tls_skip_verify=tls_skip_verify)
    try:
        try:
            return client.open_pool(name)
        except PlasmiteError as err:
            if err.kind != ErrorKind.NOT_FOUND or not create:
                raise
        return _create_or_open(client, name, create_size)
    except PlasmiteError as err:
        cli_hint(err, ref, cmd)
        raise


def cli_hint(err: PlasmiteError, ref: str, cmd: str) -> None:
    """Replace a server's hint (written for HTTP clients) with the CLI flags that fix it."""
    import shlex

    text = err.message.lower()
    if err.kind == ErrorKind.NOT_FOUND and text.startswith("pool not found"):
        q = shlex.quote(redact(ref))
        err.hint = (f"create it with `pls pool create {q}`"
                    + (f" or add --create to `pls {cmd}`" if cmd in ("feed", "follow", "duplex") else ""))
    elif err.kind == ErrorKind.PERMISSION and "bearer token" in text:
        if "missing" in text:
            err.hint = "the server wants a token: pass --token-file PATH (or --token TOKEN)"
        else:
            err.hint = "the server refused this token: check the file given to --token-file (or --token)"
    elif err.kind == ErrorKind.PERMISSION and text.startswith("forbidden"):
        err.hint = "the server's --access mode does not allow this; ask its operator"


def reject_remote_flags(cmd: str, token: Any = None, token_file: Any = None,
                        tls_ca: Any = None, tls_skip_verify: bool = False) -> None:
    used = [
        flag
        for flag, value in (
            ("--token", token),
            ("--token-file", token_file),
            ("--tls-ca", tls_ca),
            ("--tls-skip-verify", tls_skip_verify),
        )
        if value
    ]
    if used:
        raise UsageError(
            f"{', '.join(used)} only apply to remote pool refs",
            hint=f"remove {' and '.join(used)}, or give `pls {cmd}` a URL ref (http(s)://host:port/POOL)",
        )


def open_local(state, ref: str, cmd: str, *, create: bool = False, create_size: int | None = None,
               can_create: bool = True):
    """Open (or with ``create``, create) a local pool, with actionable NotFound hints."""
    client = state.client()
    try:
        return client.open_pool(ref)
    except PlasmiteError as err:
        if err.kind != ErrorKind.NOT_FOUND:
            raise
        if not create:
            import shlex

            err.message = f"pool not found: {ref}"
            err.hint = (
                f"create it with `pls pool create {shlex.quote(ref)}`"
                + (f" or add --create to `pls {cmd}`" if can_create else "")
                + "; `pls pool list` shows existing pools"
            )
            raise
    return _create_or_open(client, ref, create_size)


def _create_or_open(client, name: str, size: int | None):
    """Create the pool that was not found; open it if another process won the race."""
    from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES

    try:
        return client.create_pool(name, size or DEFAULT_POOL_SIZE_BYTES)
    except PlasmiteError as err:
        if err.kind == ErrorKind.ALREADY_EXISTS:
            return client.open_pool(name)
        raise
