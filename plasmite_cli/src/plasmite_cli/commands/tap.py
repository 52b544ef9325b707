"""``pls tap POOL -- COMMAND...``: run a command and record its output lines.

The wrapped program is not changed: it inherits stdin, its stdout/stderr are
passed through (unless ``-q``) and each line is also stored as a message
``{"kind": "line", "stream": "stdout"|"stderr", "line": ...}``, between a
``start`` and an ``exit`` message tagged ``lifecycle``. SIGINT, SIGTERM and
SIGHUP sent to tap are forwarded to the child, and tap exits with the child's
status (128 + signal number when a signal ended it), so it can stand in for
the command in scripts and CI.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time

import click

from .common import complete_pool, get_state

_EOF = object()
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@click.command(
    epilog="""\b
Examples:
  pls tap build --create -- make test
  pls follow build --where '.data.stream == "stderr"'
  pls tap deploy --tag prod -- ./deploy.sh
  pls tap api --create --create-size 64M -- ./server --port 8080

\b
Messages: start {"kind":"start","cmd":[...],"pid":N} and exit
{"kind":"exit","code":N|"signal":"SIGTERM","elapsed_ms":N} carry the tag
lifecycle; each output line {"kind":"line","stream","line"} carries the
--tag tags. Exit status: the command's own (128+N if killed by signal N).
Local pools, or a pool of a transport such as redis:// (not http(s)).""",
    short_help="Run a command and record its output in a pool.",
)
@click.argument("pool", metavar="POOL", shell_complete=complete_pool)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND...")
@click.option("--create", is_flag=True, help="Create the pool if it does not exist.")
@click.option("--create-size", metavar="SIZE", help="Size of a pool made by --create, e.g. 64M (default 1M).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag the recorded output lines (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Do not pass the command's output through.")
@click.option("--durability", type=click.Choice(["fast", "flush"]), default="fast", show_default=True,
              help="fast, or flush to sync each write to disk.")
@click.pass_context
def tap(ctx, pool, command, create, create_size, tags, quiet, durability):
    """Run COMMAND, recording each line of its stdout and stderr in POOL."""
    import subprocess

    from plasmite_core.errors import PermissionDeniedError, UsageError

    from .. import parsing, targets

    if create_size is not None and not create:
        raise UsageError("--create-size requires --create", hint="add --create or remove --create-size")
    if targets.is_http(pool):
        raise UsageError("tap takes local pool refs (or a transport such as redis://), not http(s)",
                         hint="tap into a local pool, e.g. `pls tap build -- make`")
    if not command:
        raise UsageError("tap needs a command after --", hint="e.g. `pls tap build -- make test`")
    size = parsing.parse_size(create_size, flag="--create-size") if create_size is not None else None
    from plasmite_core.durability import parse_durability

    dur = parse_durability(durability)
    handle = targets.open_pool(get_state(ctx), pool, "tap", create=create, create_size=size)
    line_tags = parsing.check_tags(tags)
    cmd = list(command)

    try:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise UsageError(f"command not found: {cmd[0]}", hint="check PATH or give the program's full path") from None
    except PermissionError:
        raise PermissionDeniedError(f"cannot run {cmd[0]}: permission denied",
                                    hint="check that the file is executable (chmod +x)") from None

    previous = {}

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except (ProcessLookupError, OSError):
            pass

    for sig in _FORWARDED:
        try:
            previous[sig] = signal.signal(sig, forward)
        except (ValueError, OSError):
            pass

    started = time.monotonic()
    events: queue.Queue = queue.Queue()
    out_fd = sys.stdout.fileno() if not quiet else None
    err_fd = sys.stderr.fileno() if not quiet else None
    readers = [
        threading.Thread(target=_pump, args=(child.stdout, "stdout", out_fd, events), daemon=True),
        threading.Thread(target=_pump, args=(child.stderr, "stderr", err_fd, events), daemon=True),
    ]
    try:
        handle.append({"kind": "start", "cmd": cmd, "pid": child.pid}, ["lifecycle"], dur)
    except BaseException:
        child.kill()
        child.wait()
        raise
    if sys.stderr.isatty():
        from ..output import write_err

        write_err(f"tapping {pool} <- {' '.join(cmd)}\n")
    for t in readers:
        t.start()

    lines = 0
    open_streams = 2
    try:
        while open_streams:
            try:
                item = events.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = []
            while True:
                if item is _EOF:
                    open_streams -= 1
                else:
                    batch.append(item)
                try:
                    item = events.get_nowait()
                except queue.Empty:
                    break
            if batch:
                handle.append_many(batch, line_tags, dur)
                lines += len(batch)
        status = child.wait()
    except BaseException:
        if child.poll() is None:
            child.kill()
            child.wait()
        raise
    finally:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    elapsed_ms = int((time.monotonic() - started) * 1000)
    if status < 0:
        signum = -status
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"SIG{signum}"
        handle.append({"kind": "exit", "signal": name, "elapsed_ms": elapsed_ms}, ["lifecycle"], dur)
        rc = 128 + signum
        outcome = f"signal {name}"
    else:
        handle.append({"kind": "exit", "code": status, "elapsed_ms": elapsed_ms}, ["lifecycle"], dur)
        rc = status
        outcome = f"exit {status}"
    if sys.stderr.isatty():
        from ..output import write_err

        write_err(f"tapped {lines} lines ({elapsed_ms / 1000:.1f}s) -> {pool} {outcome}\n")
    return rc


def _pump(pipe, stream: str, passthrough_fd, events: queue.Queue) -> None:
    """Read lines from the child's pipe: pass them through and queue them."""
    try:
        for raw in iter(pipe.readline, b""):
            if passthrough_fd is not None:
                try:
                    view = memoryview(raw)
                    while view:
                        view = view[os.write(passthrough_fd, view):]
                except OSError:  # our own stdout went away: keep recording
                    passthrough_fd = None
            events.put({"kind": "line", "stream": stream,
                        "line": raw.rstrip(b"\r\n").decode("utf-8", "replace")})
    finally:
        events.put(_EOF)
        try:
            pipe.close()
        except OSError:
            pass
