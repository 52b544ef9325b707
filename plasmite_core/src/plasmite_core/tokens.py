"""Bearer-token files, read the same way by the server, the CLI and the remote client."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import IoError, NotFoundError, UsageError


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The one token in ``path`` (surrounding whitespace stripped)."""
    p = Path(path)
    try:
        token = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotFoundError(f"token file not found: {p}", str(p),
                            hint="run `pls serve init` to generate one, or fix --token-file") from None
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise IoError(f"cannot read token file {p}: {detail}", str(p), hint="check the file's permissions") from None
    if not token:
        raise UsageError(f"token file is empty: {p}", str(p),
                         hint="write a token into the file, or run `pls serve init`")
    if any(ch.isspace() for ch in token):
        raise UsageError(f"token file must hold one token without whitespace: {p}", str(p),
                         hint="run `pls serve init` to generate a token file")
    return token
