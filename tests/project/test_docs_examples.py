"""Every example in README.md and docs/*.md runs as pasted, in order, on a fresh pool directory.

Each document gets a fresh ``HOME`` (so ``~/.plasmite/pools`` is empty) and a
fresh working directory. Its fenced ``bash``/``sh``/``console`` blocks (for
``console``, the ``$ `` lines) run one command line at a time with ``bash -c``,
and its ``python`` blocks with the test's interpreter; every line must exit 0.

Conventions the documents use, so the examples stay runnable:

- a trailing comment containing ``(runs until Ctrl-C)`` marks a line that does
  not end by itself (``pls follow chat``, ``pls serve``): it is started in the
  background, must still be running (or have exited 0) when the document
  ends, and is then interrupted with SIGINT;
- ``(waits for the next line)`` marks a line that blocks until a later line
  has run (``follow --one`` gating on a ``feed``): it runs in the background
  and must exit 0 by the end of the document;
- ``(exits N)`` marks a line whose exit status is N;
- ``<!-- docs-test: skip REASON -->`` on the line before a fence leaves that
  block out (placeholders, other machines, measurements). README.md may not
  use it.

The test changes only what it must: ``127.0.0.1:9700`` becomes a free port
(and ``pls serve`` gets ``--bind`` to it), ``pip install ...`` and ``tox`` are
not run (the test runs inside the installed environment), and a line whose
program is not installed (say ``journalctl``) is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
SKIP_MARK = re.compile(r"<!--\s*docs-test:\s*skip\b\s*(.*?)\s*-->")
BUILTINS = {"source", ".", "cd", "echo", "printf", "export", "set", "test", "[", "true", "false", "read", "sleep"}
TIMEOUT = 120.0


@dataclass
class Example:
    doc: str
    lineno: int
    lang: str
    text: str
    skip: str | None = None


@dataclass
class Background:
    example: Example
    proc: subprocess.Popen
    until_ctrl_c: bool
    log: Path
    expect: int = 0


def extract(path: Path) -> list[Example]:
    """The runnable units of a document, in order: shell command lines and whole python blocks."""
    lines = path.read_text().splitlines()
    out: list[Example] = []
    i = 0
    prev = ""
    while i < len(lines):
        m = re.match(r"^```\s*([\w+-]*)", lines[i])
        if not m:
            if lines[i].strip():
                prev = lines[i]
            i += 1
            continue
        lang = m.group(1).lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = lines[start:j]
        skip = SKIP_MARK.search(prev)
        skip_reason = (skip.group(1) or "marked") if skip else None
        if lang == "python":
            out.append(Example(path.name, start + 1, lang, "\n".join(body), skip_reason))
        elif lang in SHELL_LANGS:
            for lineno, cmd in _commands(body, lang == "console"):
                out.append(Example(path.name, start + 1 + lineno, lang, cmd, skip_reason))
        prev = ""
        i = j + 1
    return out


def _commands(body: list[str], console: bool):
    pending, first = None, 0
    for n, raw in enumerate(body):
        line = raw.rstrip()
        if pending is None:
            if console:
                if not line.startswith("$ "):
                    continue  # output shown in the example
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            first = n
            pending = ""
        pending += line.lstrip() if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        yield first, pending.strip()
        pending = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _adapt(cmd: str, port: int) -> str | None:
    """The command as the test runs it, or None when it is not run at all."""
    parts = [p for p in cmd.split(" && ") if not re.match(r"\s*(pip install\b|tox\s*$|tox\s)", p)]
    if not parts:
        return None
    cmd = " && ".join(parts).replace("127.0.0.1:9700", f"127.0.0.1:{port}")
    if "--bind" not in cmd:
        cmd = re.sub(r"\bpls serve\b(?!\s+init\b)", f"pls serve --bind 127.0.0.1:{port}", cmd)
    return cmd


def _missing_program(cmd: str, path: str) -> str | None:
    code = cmd.split(" #")[0]
    for segment in re.split(r"\|\||&&|[|;]|<\(|\$\(", code):
        words = segment.split()
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]  # VAR=value prefixes
        if not words:
            continue
        prog = words[0].lstrip("(")
        if prog and prog not in BUILTINS and shutil.which(prog, path=path) is None:
            return prog
    return None


def _expected_status(cmd: str) -> int:
    m = re.search(r"\(exits (\d+)\)", cmd)
    return int(m.group(1)) if m else 0


def _session_maps_a_pool(sid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            if ".plasmite" in (entry / "maps").read_text():
                return True
        except (OSError, ValueError):
            continue
    return False


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait_started(bg: Background, port: int) -> None:
    """Until the background line has a pool mapped or the server listens (or it ended)."""
    deadline = time.monotonic() + 30
    serves = "pls serve" in bg.example.text
    while time.monotonic() < deadline and bg.proc.poll() is None:
        if serves and _port_open(port):
            return
        if not serves and Path("/proc/self/maps").exists() and _session_maps_a_pool(bg.proc.pid):
            time.sleep(1.0)  # and positioned its stream (generous: the box may be loaded)
            return
        if not Path("/proc/self/maps").exists():
            time.sleep(2)
            return
        time.sleep(0.05)


def _where(ex: Example) -> str:
    return f"{ex.doc}:{ex.lineno}: {ex.text}"


def _stop(bg: Background) -> None:
    if bg.proc.poll() is None:
        try:
            os.killpg(bg.proc.pid, signal.SIGINT)
            bg.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(bg.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            bg.proc.wait(10)


def run_document(path: Path, tmp_path: Path, *, strict: bool) -> list[str]:
    """Run every example of ``path``; returns notes on what was not run."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLASMITE_")}
    bindir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               NO_COLOR="1")
    port = _free_port()
    notes: list[str] = []
    background: list[Background] = []
    try:
        for ex in extract(path):
            if ex.skip:
                assert not strict, f"{_where(ex)}: README examples may not be skipped ({ex.skip})"
                notes.append(f"skipped ({ex.skip}): {_where(ex)}")
                continue
            if ex.lang == "python":
                code = ex.text.replace("127.0.0.1:9700", f"127.0.0.1:{port}")
                r = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                                   timeout=TIMEOUT, stdin=subprocess.DEVNULL)
                assert r.returncode == 0, f"{_where(ex)}\n{r.stdout.decode()}\n{r.stderr.decode()}"
                continue
            cmd = _adapt(ex.text, port)
            if cmd is None:
                notes.append(f"not run (installs): {_where(ex)}")
                continue
            missing = _missing_program(cmd, env["PATH"])
            if missing:
                notes.append(f"not run ({missing} is not installed): {_where(ex)}")
                continue
            until_ctrl_c = "(runs until Ctrl-C)" in cmd
            if until_ctrl_c or "(waits for the next line)" in cmd:
                log = tmp_path / f"bg-{ex.lineno}.log"
                with open(log, "wb") as fh:
                    proc = subprocess.Popen(["bash", "-c", cmd], cwd=work, env=env, stdin=subprocess.PIPE,
                                            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
                bg = Background(ex, proc, until_ctrl_c, log, _expected_status(cmd))
                background.append(bg)
                _wait_started(bg, port)
                if until_ctrl_c:
                    assert proc.poll() in (None, 0), f"{_where(ex)} ended early:\n{log.read_text()}"
                continue
            r = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, timeout=TIMEOUT,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == _expected_status(cmd), (
                f"{_where(ex)}\nexit {r.returncode}\n{r.stdout.decode()}\n{r.stderr.decode()}")
        for bg in background:
            if bg.until_ctrl_c:
                assert bg.proc.poll() in (None, 0), f"{_where(bg.example)} ended early:\n{bg.log.read_text()}"
            else:
                try:
                    rc = bg.proc.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    rc = None
                assert rc == bg.expect, f"{_where(bg.example)}: exit {rc}\n{bg.log.read_text()}"
    finally:
        for bg in reversed(background):
            _stop(bg)
    return notes


def test_readme_examples_run_as_pasted(tmp_path):
    notes = run_document(REPO / "README.md", tmp_path, strict=True)
    assert all("is not installed" in n or "installs" in n for n in notes), notes


@pytest.mark.parametrize("doc", [p for p in DOCUMENTS if p.name != "README.md"], ids=lambda p: p.name)
def test_doc_examples_run_as_pasted(doc, tmp_path):
    run_document(doc, tmp_path, strict=False)


def test_extraction_conventions(tmp_path):
    """The parser itself: console prompts and output, continuations, markers, skips."""
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n```console\n$ pls pool create a \\\n    --size 64K\noutput line\n$ pls follow a  # (runs until Ctrl-C)\n"
        "```\n<!-- docs-test: skip needs a remote host -->\n```bash\n# comment\ncurl https://x.example\n```\n"
        "```json\n{}\n```\n"
    )
    got = [(e.lineno, e.lang, e.text, e.skip) for e in extract(doc)]
    assert got == [
        (3, "console", "pls pool create a --size 64K", None),
        (6, "console", "pls follow a  # (runs until Ctrl-C)", None),
        (11, "bash", "curl https://x.example", "needs a remote host"),
    ]
    assert _adapt("pip install . && pls feed d '{}'", 4242) == "pls feed d '{}'"
    assert _adapt("pip install tox && tox", 4242) is None
    assert _adapt("pls serve --dir x  # here", 4242) == "pls serve --bind 127.0.0.1:4242 --dir x  # here"
    assert _adapt("pls serve init", 4242) == "pls serve init"
    assert _missing_program("no-such-program-xyz | pls feed a", os.environ.get("PATH", "")) == "no-such-program-xyz"
