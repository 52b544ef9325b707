"""Upstream's own Python binding tests, run unchanged against ``import plasmite``.

The file lives beside the checkout (``../shared/upstream-python-tests``, with
upstream's license); it is run with unittest in a subprocess, from its own
folder, against whatever ``plasmite`` this interpreter imports (under tox: the
installed distributions). Without that folder the test skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "upstream-python-tests"


@pytest.mark.skipif(not (UPSTREAM / "test_bindings.py").is_file(),
                    reason="../shared/upstream-python-tests is not beside this checkout")
def test_upstream_binding_tests_pass_unchanged(tmp_path):
    env = dict(os.environ)
    env.update(
        PLASMITE_BIN=shutil.which("pls") or "pls",
        PLASMITE_LIB_DIR=str(tmp_path),  # upstream loads its native library from here; we have none
        TMPDIR=str(tmp_path),  # the tests' mkdtemp() pools go away with tmp_path
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("PLASMITE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "unittest", "-v", "test_bindings"], cwd=UPSTREAM, env=env,
                          capture_output=True, text=True, timeout=600)
    report = proc.stderr + proc.stdout
    assert proc.returncode == 0, report
    ran = re.search(r"^Ran (\d+) tests?", report, re.M)
    assert ran and int(ran.group(1)) > 0, report
    assert "skipped" not in report.splitlines()[-1], report
