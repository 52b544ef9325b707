"""The nine stable error kinds, shared by the API, the CLI and the HTTP server.

Every failure a user can see is a ``PlasmiteError`` carrying a kind, a message
that says what went wrong, an optional hint that says what to do next, and the
structured context (path, seq, offset) that scripts match on.
"""

from __future__ import annotations

from enum import IntEnum

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any


class ErrorKind(IntEnum):
    """Stable v0 error kinds; the value is the CLI exit code."""

    INTERNAL = 1
    USAGE = 2
    NOT_FOUND = 3
    ALREADY_EXISTS = 4
    BUSY = 5
    PERMISSION = 6
    CORRUPT = 7
    IO = 8
    RETENTION_GAP = 9

    @property
    def label(self) -> str:
        """The wire name (``"NotFound"``) used in JSON error envelopes."""
        return _LABELS[self]

    @property
    def exit_code(self) -> int:
        return int(self)

    @property
    def http_status(self) -> int:
        return _HTTP[self]

    @classmethod
    def from_label(cls, label: str) -> "ErrorKind":
        try:
            return _BY_LABEL[label]
        except KeyError:
            return cls.INTERNAL


_LABELS = {
    ErrorKind.INTERNAL: "Internal",
    ErrorKind.USAGE: "Usage",
    ErrorKind.NOT_FOUND: "NotFound",
    ErrorKind.ALREADY_EXISTS: "AlreadyExists",
    ErrorKind.BUSY: "Busy",
    ErrorKind.PERMISSION: "Permission",
    ErrorKind.CORRUPT: "Corrupt",
    ErrorKind.IO: "Io",
    ErrorKind.RETENTION_GAP: "RetentionGap",
}
_BY_LABEL = {v: k for k, v in _LABELS.items()}
_HTTP = {
    ErrorKind.INTERNAL: 500,
    ErrorKind.USAGE: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.BUSY: 423,
    ErrorKind.PERMISSION: 403,
    ErrorKind.CORRUPT: 500,
    ErrorKind.IO: 500,
    ErrorKind.RETENTION_GAP: 410,
}


class PlasmiteError(RuntimeError):
    """Base of every Plasmite failure: a kind, a message, a hint and context."""

    default_kind = ErrorKind.INTERNAL
    committed: list[Any]  # set by batch appends that failed part way: what was stored

    def __init__(self, *args: Any, hint: str | None = None, **context: Any) -> None:
        """Two call forms, both accepted by every class:

        * upstream's: ``PlasmiteError(kind, message, path=None, seq=None, offset=None)``
        * message first: ``NotFoundError(message, path=None, seq=None, offset=None, hint=...)``
          (the kind comes from the class).
        """
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            kind = ErrorKind(args[0])
            rest = args[1:]
        else:
            kind = self.default_kind
            rest = args
        names = ("message", "path", "seq", "offset")
        if len(rest) > len(names):
            raise TypeError("too many positional arguments for PlasmiteError")
        values = dict(zip(names, rest))
        for key, val in context.items():
            if key not in names:
                raise TypeError(f"unexpected keyword argument {key!r}")
            values[key] = val
        message = values.get("message") or kind.label
        super().__init__(message)
        self.kind = kind
        self.message = str(message)
        path = values.get("path")
        self.path = None if path is None else str(path)
        self.seq = values.get("seq")
        self.offset = values.get("offset")
        self.hint = hint

    @property
    def kind_label(self) -> str:
        return self.kind.label

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the CLI/HTTP JSON envelope."""
        out: dict[str, Any] = {"kind": self.kind.label, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.path is not None:
            out["path"] = self.path
        if self.seq is not None:
            out["seq"] = self.seq
        if self.offset is not None:
            out["offset"] = self.offset
        return out

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}"
            for k, v in (("path", self.path), ("seq", self.seq), ("offset", self.offset), ("hint", self.hint))
            if v is not None
        )
        return f"{type(self).__name__}({self.kind.label!r}, {self.message!r}{extra})"


class InternalError(PlasmiteError):
    default_kind = ErrorKind.INTERNAL


class UsageError(PlasmiteError, ValueError):
    """Bad input from the caller; also a ``ValueError``, as upstream's binding raises."""

    default_kind = ErrorKind.USAGE


class NotFoundError(PlasmiteError):
    default_kind = ErrorKind.NOT_FOUND


class AlreadyExistsError(PlasmiteError):
    default_kind = ErrorKind.ALREADY_EXISTS


class BusyError(PlasmiteError):
    default_kind = ErrorKind.BUSY


class PermissionDeniedError(PlasmiteError):
    default_kind = ErrorKind.PERMISSION


class CorruptError(PlasmiteError):
    default_kind = ErrorKind.CORRUPT


class IoError(PlasmiteError):
    default_kind = ErrorKind.IO


class RetentionGapError(PlasmiteError):
    default_kind = ErrorKind.RETENTION_GAP


ERROR_CLASSES: dict[ErrorKind, type[PlasmiteError]] = {
    cls.default_kind: cls
    for cls in (InternalError, UsageError, NotFoundError, AlreadyExistsError, BusyError, PermissionDeniedError,
                CorruptError, IoError, RetentionGapError)
}


def from_os_error(exc: OSError, path: str | None = None, *, action: str = "access") -> PlasmiteError:
    """Map an OSError to a stable kind with a hint, keeping the path."""
    import errno

    where = path or exc.filename
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return NotFoundError(
            f"not found: cannot {action} {where}", where,
            hint="check the pool name or path; `pls pool list` shows existing pools",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(
            f"permission denied: cannot {action} {where}", where,
            hint="check the file's permissions and owner, or choose another --dir",
        )
    if code == errno.EEXIST:
        return AlreadyExistsError(
            f"already exists: {where}", where,
            hint="open the existing pool instead, or delete it first",
        )
    if code == errno.ENAMETOOLONG:
        return UsageError(
            f"name too long: cannot {action} {where}", where,
            hint="use a shorter pool name or path (file names are at most 255 bytes)",
        )
    if code in (errno.EAGAIN, errno.EBUSY, errno.ETXTBSY):
        return BusyError(f"busy: {where}", where, hint="retry shortly")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return IoError(
            f"no space: cannot {action} {where}: {exc.strerror}", where,
            hint="free disk space or choose a smaller --size",
        )
    return IoError(
        ErrorKind.IO, f"i/o error: cannot {action} {where}: {exc.strerror or exc}", where,
        hint="check the disk and the file system, then retry",
    )
