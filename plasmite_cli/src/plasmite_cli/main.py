"""Process entry point of ``pls`` / ``plasmite``: dispatch and the error boundary.

``run`` sends the most common one-shot call, ``pls feed POOL DATA`` (exactly
those two arguments, no options), to ``plasmite_cli.oneshot`` (no click, no
msgspec) and, when that declines, to ``plasmite_cli.feeding`` without
importing click; everything else goes to the click application
(``plasmite_cli.app``). Both paths end in ``guarded``: a ``PlasmiteError`` is
rendered (text plus hint on a terminal, a JSON envelope otherwise) and exits
with its kind's code, anything unexpected becomes an ``Internal`` error, and
no traceback ever reaches a user.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Callable


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and exit with the right code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (never raises, except SystemExit)."""
    _ensure_std_streams()
    args = sys.argv[1:] if argv is None else list(argv)
    if _is_oneshot_feed(args):
        return guarded(lambda: _oneshot_feed(args[1], args[2]))

    def via_click() -> int:
        from .app import run_click

        return run_click(argv)

    return guarded(via_click)


def _ensure_std_streams() -> None:
    """A standard stream closed before start-up (``pls ... >&-``) is None in
    Python. A closed stdout behaves like a pipe whose reader has gone: the
    first write fails and pls exits quietly with 141 (work done before it,
    such as an append, stands). Closed stdin reads as empty, closed stderr
    drops diagnostics."""
    if sys.stdout is None:
        r, w = os.pipe()
        os.close(r)
        sys.stdout = open(w, "w", encoding="utf-8")
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


def _is_oneshot_feed(args: list[str]) -> bool:
    return (
        len(args) == 3
        and args[0] in ("feed", "poke")
        and not args[1].startswith("-")
        and not args[2].startswith("-")
        and "_PLS_COMPLETE" not in os.environ
    )


def _oneshot_feed(pool: str, data: str) -> int:
    from .oneshot import try_feed

    code = try_feed(pool, data)
    if code is not None:
        return code
    from .feeding import run_feed
    from .state import CliState

    return run_feed(CliState(None, "auto"), pool, data)


class StdoutClosed(Exception):
    """A broken pipe on stdout, carried past click (whose own EPIPE handler
    would exit 1) to ``guarded``, which exits 141 quietly."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT), carried past click to ``guarded``: exit 130, and on a
    terminal a newline after the ``^C`` echo; nothing on non-TTY stderr."""


def guarded(fn: Callable[[], int]) -> int:
    """Run ``fn`` and turn every way out of it into an exit code."""
    from plasmite_core.errors import InternalError, PlasmiteError

    try:
        try:
            return fn()
        finally:
            _flush_stdout()
    except PlasmiteError as err:
        _render(err)
        return err.kind.exit_code
    except (KeyboardInterrupt, Interrupted):
        _end_interrupted_line()
        return 130
    except (BrokenPipeError, StdoutClosed):
        _silence_stdout()
        return 141
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except OSError as exc:
        from plasmite_core.errors import from_os_error

        err = from_os_error(exc)
        _render(err)
        return err.kind.exit_code
    except Exception as exc:  # no traceback ever reaches a user
        err = InternalError(
            f"unexpected {type(exc).__name__}: {exc}",
            hint="this is a bug in plasmite; please report it with the command you ran",
        )
        _render(err)
        return err.kind.exit_code


def _end_interrupted_line() -> None:
    try:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _render(err) -> None:
    from .output import render_error

    render_error(err)


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
