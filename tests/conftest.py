"""Shared fixtures: a fresh pool directory per test, the shared/ data dir, and the
figures tests measure (printed once, after the run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIGURES = pytest.StashKey[dict]()


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


@pytest.fixture(scope="session")
def figures(request) -> dict:
    """Where a test records what it measured (``figures[title] = value``), so that
    tests only assert and the numbers docs/reliability.md quotes still show."""
    return request.config.stash.setdefault(FIGURES, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    recorded = config.stash.get(FIGURES, {})
    if recorded:
        terminalreporter.section("figures")
        for title, value in recorded.items():
            terminalreporter.write_line(f"{title}: {value}")
