"""docs/architecture.md stays true: its complete transport passes the kit, its layer rules hold."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import pytest

from plasmite_core.testing import TransportConformance, TransportUnderTest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"


def _documented_transport() -> types.ModuleType:
    text = DOC.read_text()
    section = text.split("## A complete transport", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/architecture.md lost its transport example"
    module = types.ModuleType("documented_mem_transport")
    exec(compile(code.group(1), str(DOC), "exec"), module.__dict__)
    return module


@pytest.fixture
def mem_factory():
    from plasmite_core import plugins

    module = _documented_transport()
    sys.modules[module.__name__] = module
    plugins.reset()
    plugins.get_plugin_manager().register(module, name=module.__name__)
    try:
        yield plugins.transport("mem")
    finally:
        del sys.modules[module.__name__]
        plugins.reset()


class TestDocumentedTransport(TransportConformance):
    @pytest.fixture
    def transport(self, mem_factory):
        return TransportUnderTest(connect=lambda: mem_factory("mem://kit"))


# ---------------------------------------------------------------- layer rules


def _sources(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name]


def test_core_imports_no_other_distribution():
    others = ("plasmite_cli", "plasmite_serve", "plasmite_codecs", "plasmite_jq", "click")
    bad = [f"{p.relative_to(REPO)}: {m}" for p in _sources("plasmite_core/src/plasmite_core")
           for m in _imports(p) if m.split(".")[0] in others]
    assert bad == []


def _core_library() -> list[Path]:
    """The core without its test runners (the kit, the upstream-manifest runner)."""
    return [p for p in _sources("plasmite_core/src/plasmite_core")
            if p.parent.name != "testing" and p.name != "conformance.py"]


def test_core_neither_prints_nor_exits():
    bad = [f"{p.relative_to(REPO)}:{line}" for p in _core_library() for line in _calls(p, "print")]
    bad += [str(p.relative_to(REPO)) for p in _core_library() if "sys.exit(" in p.read_text()]
    assert bad == []


# The one-shot `pls feed` start-up path opens the local pool file itself (see docs/architecture.md).
KNOWN_ENGINE_IMPORTS = {("plasmite_cli/src/plasmite_cli/oneshot.py", "plasmite_core.pool")}


def test_cli_uses_contracts_not_probes():
    bad = []
    for p in _sources("plasmite_cli/src/plasmite_cli"):
        rel = p.relative_to(REPO)
        bad += [f"{rel}:{line}: hasattr" for line in _calls(p, "hasattr")]
        bad += [f"{rel}: imports {m}" for m in _imports(p) if m in ("plasmite_core.stream", "plasmite_core.pool")
                and (str(rel), m) not in KNOWN_ENGINE_IMPORTS]
        if "except TypeError as" in p.read_text():
            bad.append(f"{rel}: parses TypeError")
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
                target = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
                if re.search(r"\b(Pool|Stream|Client|RemotePool|RemoteTail)\b", target):
                    bad.append(f"{rel}:{node.lineno}: isinstance(..., {target})")
    assert bad == []


KNOWN_CODEC_IMPORTS = {"plasmite_serve/src/plasmite_serve/lite3_routes.py"}  # the Lite3 byte endpoints


def test_server_and_cli_get_codecs_from_the_registry():
    bad = [str(p.relative_to(REPO)) for folder in ("plasmite_serve/src", "plasmite_cli/src")
           for p in _sources(folder) if any(m.startswith("plasmite_codecs") for m in _imports(p))]
    assert sorted(set(bad) - KNOWN_CODEC_IMPORTS) == []


def test_remote_shells_do_no_wire_work():
    for name in ("sync_client.py", "async_client.py"):
        text = (REPO / "plasmite_serve/src/plasmite_serve" / name).read_text()
        for marker in ("build_request(", "msgspec", "error_from_body(", "urlencode("):
            assert marker not in text, f"{name} does wire work ({marker}); it belongs in client_wire.py or tail_state.py"


# Product code: every distribution's sources, the plugins and the benchmark (not the tests).
PRODUCT_FOLDERS = ("plasmite_core/src", "plasmite_codecs/src", "plasmite_cli/src", "plasmite_serve/src",
                   "plasmite_speedups/src", "plugins", "bench")
MAX_MODULE_LINES = 600


def test_no_module_over_600_lines_without_a_reason():
    """A module over about 600 lines says in its docstring why it must be one module."""
    bad = []
    for folder in PRODUCT_FOLDERS:
        for p in _sources(folder):
            text = p.read_text()
            if text.count("\n") <= MAX_MODULE_LINES:
                continue
            doc = ast.get_docstring(ast.parse(text, str(p))) or ""
            if "Why one module of this size" not in doc:
                bad.append(f"{p.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert bad == [], "split these along their concerns, or say in the docstring 'Why one module of this size: ...'"


# ---------------------------------------------------------------- test layout

TEST_FOLDERS = {"core", "codecs", "cli", "jq", "serve", "mcp", "redis", "plasma", "reliability", "project"}


def test_tests_sit_in_a_folder_per_package():
    """A test file lives in the folder of what it tests (docs/architecture.md, "Tests");
    a module named test_* holds tests, so helpers take other names."""
    tests = REPO / "tests"
    bad = [str(p.relative_to(REPO)) for p in tests.rglob("test_*.py")
           if p.parent.parent != tests or p.parent.name not in TEST_FOLDERS]
    for p in tests.rglob("test_*.py"):
        tree = ast.parse(p.read_text(), str(p))
        if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
                   or isinstance(n, ast.ClassDef) and n.name.startswith("Test") for n in tree.body):
            bad.append(f"{p.relative_to(REPO)}: defines no test (a helper module must not be named test_*)")
    assert sorted(set(bad)) == []
    assert {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))} <= (
        TEST_FOLDERS | {"support", "fuzz"}), "a new test folder belongs in TEST_FOLDERS and docs/architecture.md"
