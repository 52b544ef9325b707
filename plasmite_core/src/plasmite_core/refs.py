"""Pool references: names, paths and URLs, resolved as upstream's CLI spec says.

1. contains ``/``: a path, used as is;
2. ends in ``.plasmite``: a file inside the pool directory;
3. otherwise: ``POOL_DIR/NAME.plasmite``.

A bare name (cases 2 and 3) must pass ``validate_pool_name``, the one name
rule of the API, the CLI and the server.
"""

from __future__ import annotations

import os
import re

from .errors import UsageError

TYPE_CHECKING = False  # pathlib is imported where a Path is made: the one-shot feed never needs one
if TYPE_CHECKING:
    from pathlib import Path

SUFFIX = ".plasmite"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def default_pool_dir() -> Path:
    """``$PLASMITE_DIR``, else ``~/.plasmite/pools`` (read at call time)."""
    from pathlib import Path

    env = os.environ.get("PLASMITE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.path.expanduser("~")) / ".plasmite" / "pools"


def is_url(ref: str) -> bool:
    return bool(_URL.match(ref))


def split_url(ref: str) -> tuple[str, str, str]:
    """``http://host:9700/chat`` → (scheme, base URL, pool name)."""
    from urllib.parse import urlsplit

    parts = urlsplit(ref)
    scheme = parts.scheme.lower()
    path = parts.path
    name = path[1:] if path.startswith("/") else path
    if (
        not parts.netloc
        or not name
        or "/" in name
        or parts.query
        or parts.fragment
    ):
        raise UsageError(
            f"invalid remote pool ref: {ref}",
            hint="use the shorthand scheme://host:port/POOL, e.g. http://127.0.0.1:9700/chat "
            "(no trailing slash, no API path)",
        )
    return scheme, f"{scheme}://{parts.netloc}", name


def resolve_pool_ref(ref: str | os.PathLike, pool_dir: str | os.PathLike | None = None) -> Path:
    from pathlib import Path

    if isinstance(ref, os.PathLike):
        return Path(ref)
    if not isinstance(ref, str) or not ref:
        raise UsageError("pool reference is empty", hint="name a pool, e.g. `chat`, or give a path")
    if "\0" in ref:
        raise UsageError("pool reference contains a NUL byte", hint="use a plain name or path")
    if is_url(ref):
        raise UsageError(
            f"{ref!r} is a URL; the local client takes names and paths",
            hint="use a remote client (plasmite_serve.RemoteClient) or `pls` with the URL",
        )
    if "/" in ref:
        return Path(ref)
    base = Path(pool_dir) if pool_dir is not None else default_pool_dir()
    return base / (validate_pool_name(ref) + SUFFIX)


def resolve_pool_ref_text(ref: str) -> str | None:
    """``resolve_pool_ref(ref)`` for the default pool directory, as text and
    without importing pathlib (a one-shot feed's start-up); not normalized
    as a ``Path`` is, but naming the same file. None where ``resolve_pool_ref``
    would raise (empty, NUL, URL, invalid name) or ``~`` cannot be expanded."""
    if not ref or "\0" in ref or is_url(ref):
        return None
    if "/" in ref:
        return ref
    try:
        name = validate_pool_name(ref)
    except UsageError:
        return None
    env = os.environ.get("PLASMITE_DIR")
    base = os.path.expanduser(env) if env else os.path.join(os.path.expanduser("~"), ".plasmite", "pools")
    if base.startswith("~"):
        return None  # default_pool_dir raises (or keeps a relative "~"): let it
    return os.path.join(base, name + SUFFIX)


def pool_files(pool_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(name, path)`` of the pool files in a directory, sorted; none if it is missing."""
    from pathlib import Path

    base = Path(pool_dir)
    try:
        paths = sorted(p for p in base.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as exc:
        from .errors import from_os_error

        raise from_os_error(exc, str(base), action="list") from None
    return [(p.name[: -len(SUFFIX)], p) for p in paths]


def pool_name_of(path: Path) -> str:
    name = path.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


_NAME_OK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
MAX_NAME_LENGTH = 128


def validate_pool_name(name: str) -> str:
    """A bare pool name (``NAME`` or ``NAME.plasmite``) safe to join to a
    directory; returns it without the suffix. The whole string must match:
    no separators, no ``..``, no control characters (a trailing newline
    included), at most 128 characters."""
    if not isinstance(name, str) or not name:
        raise UsageError("pool name is empty", hint="use letters, digits, '-', '_' and '.'")
    if name.endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"pool name is too long ({len(name)} characters)",
            hint=f"pool names are at most {MAX_NAME_LENGTH} characters",
        )
    if not _NAME_OK.fullmatch(name) or ".." in name:
        raise UsageError(
            f"invalid pool name {name!r}",
            hint="pool names use letters, digits, '-', '_' and '.', at most 128 characters, "
            "with no path separators or '..'; a local file of another name is opened by its path "
            "(one that contains '/', e.g. ./my-file.plasmite)",
        )
    return name
