"""Upstream's conformance manifests (../shared/conformance), run by our runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plasmite_core.conformance import run_manifest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
MANIFESTS = sorted(SHARED.glob("*-v0.json")) if SHARED.is_dir() else []


@pytest.mark.skipif(not MANIFESTS, reason="../shared/conformance is not beside this checkout")
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_manifest(manifest, tmp_path, monkeypatch):
    if "multiprocess" in manifest.name and not (shutil.which("plasmite") or shutil.which("pls")):
        try:
            import plasmite_cli  # noqa: F401
        except ImportError:
            pytest.skip("spawn_poke needs the plasmite CLI")
        monkeypatch.setenv("PLASMITE_BIN", "")
    assert run_manifest(manifest, tmp_path) >= 1


def test_runner_reports_the_failing_step(tmp_path):
    from plasmite_core.conformance import Runner, StepFailure

    manifest = {
        "conformance_version": 0,
        "name": "deliberate-failure",
        "steps": [
            {"op": "create_pool", "pool": "p"},
            {"op": "append", "id": "wrong-seq", "pool": "p", "input": {"data": {}}, "expect": {"seq": 7}},
        ],
    }
    with pytest.raises(StepFailure, match=r"step 1 \(wrong-seq\)"):
        Runner(manifest, tmp_path).run()
