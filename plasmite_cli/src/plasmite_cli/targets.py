"""Resolve a command's POOL argument to an open pool, local or remote.

Local refs follow the core's rules (``plasmite_core.refs``). A URL ref
(``http://host:port/NAME``) is handed to the transport that a plugin registered
for its scheme (plasmite-serve provides http/https); without one the user gets
a Usage error saying what to install. Errors carry hints that name the exact
command to run next.
"""

from __future__ import annotations

from typing import Any

from plasmite_core.errors import ErrorKind, PlasmiteError, UsageError
from plasmite_core.refs import is_url, split_url  # noqa: F401  (the commands' URL tests)


_warned: list[bool] = []  # the --tls-skip-verify warning is printed once per process


def remote_client(ref: str, *, token: str | None = None, token_file: str | None = None,
                  tls_ca: str | None = None, tls_skip_verify: bool = False):
    """(client, base URL, pool name) for a URL ref, through the transport registered for its scheme."""
    scheme, base, name = split_url(ref)
    from plasmite_core import plugins

    try:
        factory = plugins.transport(scheme)
    except UsageError:
        if scheme in ("http", "https"):
            hint = "install plasmite-serve (pip install plasmite-serve), which provides http and https pool refs"
        else:
            hint = f"no installed plugin handles {scheme}:// refs; `pls plugins` lists what is installed"
        raise UsageError(f"no transport for {scheme}:// pool refs is installed", hint=hint) from None
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
    return factory(base, **opts), base, name


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
        from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES

        try:
            return client.create_pool(name, create_size or DEFAULT_POOL_SIZE_BYTES)
        except PlasmiteError as err:
            if err.kind == ErrorKind.ALREADY_EXISTS:  # another client won the race
                return client.open_pool(name)
            raise
    except PlasmiteError as err:
        cli_hint(err, ref, cmd)
        raise


def cli_hint(err: PlasmiteError, ref: str, cmd: str) -> None:
    """Replace a server's hint (written for HTTP clients) with the CLI flags that fix it."""
    import shlex

    text = err.message.lower()
    if err.kind == ErrorKind.NOT_FOUND and text.startswith("pool not found"):
        q = shlex.quote(ref)
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
            hint=f"remove {' and '.join(used)}, or give `pls {cmd}` an http(s)://host:port/POOL ref",
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
    from plasmite_core.client import DEFAULT_POOL_SIZE_BYTES

    try:
        return client.create_pool(ref, create_size or DEFAULT_POOL_SIZE_BYTES)
    except PlasmiteError as err:
        if err.kind == ErrorKind.ALREADY_EXISTS:  # another process won the race
            return client.open_pool(ref)
        raise
