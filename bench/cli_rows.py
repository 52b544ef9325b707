"""CLI rows: ``pls feed POOL`` with NDJSON on stdin, and one-shot
``pls feed POOL '{..}'`` wall time against a bare ``python -c pass`` of a plain
venv of the same interpreter.  Skipped with a note when the CLI is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import msgspec

from bench.util import Result, median, payload


def find_cli() -> tuple[str | None, str]:
    """The `pls` console script of this interpreter's environment (next to
    sys.executable), else the first on PATH.  Preferring the former skips
    launcher shims (pyenv's are shell scripts) that would be timed too."""
    import sys
    import sysconfig

    from bench.util import installed

    if not installed("plasmite_cli"):
        return None, "plasmite-cli is not installed for this interpreter: pip install ./plasmite_cli"
    for here in (os.path.dirname(sys.executable), sysconfig.get_path("scripts")):
        for name in ("pls", "plasmite"):
            path = os.path.join(here, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path, ""
    for name in ("pls", "plasmite"):
        path = shutil.which(name)
        if path:
            return path, ""
    return None, "plasmite-cli not installed (no `pls` on PATH): pip install ./plasmite_cli"


def cli_python(cli: str) -> str:
    """The interpreter a console script runs on (its shebang), for a fair baseline."""
    import sys

    try:
        with open(cli, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
        if first.startswith("#!"):
            exe = first[2:].strip().split()[0]
            if os.path.exists(exe) and "python" in os.path.basename(exe):
                return exe
    except OSError:
        pass
    return sys.executable


def _pool(workdir: str, name: str, size: int) -> str:
    from plasmite import Client

    pool_dir = os.path.join(workdir, "cli-pools")
    os.makedirs(pool_dir, exist_ok=True)
    with Client(pool_dir) as c:
        p = c.create_pool(name, size_bytes=size)
        path = str(p.path)
        p.close()
    return path


def _count(path: str) -> int:
    from plasmite import Client

    with Client(os.path.dirname(path)) as c:
        return c.pool_info(path).message_count


def cli_feed(workdir: str, n: int, timeout_s: float) -> list[Result]:
    cli, why = find_cli()
    if cli is None:
        return [Result("plasmite", "cli_feed", None, "msg/s", note=why)]
    path = _pool(workdir, "feed", 128 << 20)
    enc = msgspec.json.encode
    data = b"".join(enc(payload(i)) + b"\n" for i in range(n))
    env = dict(os.environ, PLASMITE_DIR=os.path.dirname(path))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([cli, "feed", path], input=data, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return [Result("plasmite", "cli_feed", None, "msg/s", note=f"did not finish {n} messages in {timeout_s:.0f} s")]
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return [Result("plasmite", "cli_feed", None, "msg/s", note=f"exit {proc.returncode}: {err[0][:120]}")]
    got = _count(path)
    return [Result("plasmite", "cli_feed", n / dt, "msg/s", ok=got == n,
                   note=f"{n} lines in {dt:.2f} s incl. start-up; {got} stored; receipts to /dev/null",
                   extra={"seconds": dt, "stored": got})]


def _plain_venv(py: str, workdir: str) -> str:
    """The python of a fresh plain venv of ``py``'s interpreter (no packages,
    no .pth start-up hooks): what ``python -c pass`` is measured on."""
    venv = os.path.join(workdir, "plain-venv")
    subprocess.run([py, "-m", "venv", "--without-pip", "--clear", venv], check=True, timeout=300,
                   stdout=subprocess.DEVNULL)
    return os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")


def _added_paths(py: str, plain: str) -> str:
    """The import path entries ``py``'s environment adds to the plain venv's
    (its site-packages, the directories its .pth files name, any PYTHONPATH),
    as a PYTHONPATH value."""
    code = "import sys; print('\\n'.join(sys.path))"
    bare_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def path_of(exe: str, env: dict[str, str]) -> list[str]:
        out = subprocess.run([exe, "-c", code], capture_output=True, text=True, check=True, timeout=60, env=env)
        return [p for p in out.stdout.splitlines() if p]

    plain_path = set(path_of(plain, bare_env))
    return os.pathsep.join(p for p in path_of(py, dict(os.environ)) if p not in plain_path)


def cli_oneshot(workdir: str, reps: int) -> list[Result]:
    """Both sides run on a plain venv's interpreter (``pls`` is its console
    script with the bench environment's packages on PYTHONPATH), so neither
    pays the start-up hooks of the bench environment's .pth files, which are
    not Plasmite's start-up: a user's plain venv has none of them."""
    cli, why = find_cli()
    if cli is None:
        return [Result("plasmite", "cli_oneshot", None, "ms", False, note=why)]
    env_py = cli_python(cli)
    py = _plain_venv(env_py, workdir)
    path = _pool(workdir, "oneshot", 1 << 20)
    env = dict(os.environ, PLASMITE_DIR=os.path.dirname(path), PYTHONPATH=_added_paths(env_py, py))
    msg = msgspec.json.encode(payload(1)).decode()

    def timed(argv) -> tuple[float, float, int]:
        """Wall and CPU ms of one run (CPU time is what a loaded box distorts
        least). ``os.wait4`` blocks until the exit: subprocess's wait with a
        timeout polls with doubling sleeps, which rounded wall times up to
        about 32, 64 or 113 ms."""
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        guard = threading.Timer(30, p.kill)
        guard.start()
        try:
            _pid, status, usage = os.wait4(p.pid, 0)
        finally:
            guard.cancel()
        wall = (time.perf_counter() - t0) * 1000
        p.returncode = os.waitstatus_to_exitcode(status)
        return wall, (usage.ru_utime + usage.ru_stime) * 1000, p.returncode

    bare, tool, bare_cpu, tool_cpu = [], [], [], []
    for _ in range(reps):  # interleaved so drift hits both alike
        ms, cpu, _rc = timed([py, "-c", "pass"])
        bare.append(ms)
        bare_cpu.append(cpu)
        ms, cpu, rc = timed([py, cli, "feed", path, msg])
        if rc != 0:
            return [Result("plasmite", "cli_oneshot", None, "ms", False, note=f"`pls feed` exited {rc}")]
        tool.append(ms)
        tool_cpu.append(cpu)
    got = _count(path)
    cpu_ratio = median(tool_cpu) / median(bare_cpu) if median(bare_cpu) > 0 else float("nan")
    return [
        Result("floor", "cli_oneshot", median(bare), "ms", False, note="bare `python -c pass` in a plain venv",
               extra={"runs": bare, "cpu_runs": bare_cpu}),
        Result("plasmite", "cli_oneshot", median(tool), "ms", False, ok=got == reps,
               note=f"median of {reps}; the plain venv's interpreter, packages on PYTHONPATH; "
                    f"CPU time {cpu_ratio:.2f} × the bare one's",
               extra={"runs": tool, "cpu_runs": tool_cpu}),
    ]
