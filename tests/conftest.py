"""Shared fixtures: a fresh pool directory per test, and the shared/ data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def pool_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pools"
    d.mkdir()
    return d


@pytest.fixture
def client(pool_dir: Path):
    from plasmite import Client

    with Client(pool_dir) as c:
        yield c


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (upstream manifests and vectors) is not beside this checkout")
    return SHARED


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


PY = sys.executable
