"""The lean one-shot feed encodes exactly what msgspec (the full path) stores,
and declines every value outside its subset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plasmite_cli.oneshot import lean_payload

_scalars = (st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.text()
            | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: "e" not in repr(f)))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                       max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=5), st.booleans())
def test_lean_payload_matches_msgspec(value, spaced):
    text = json.dumps(value, ensure_ascii=spaced, indent=1 if spaced else None)
    assert lean_payload(text) == msgspec.json.encode(msgspec.json.decode(text.encode()))


def test_lean_payload_declines_outside_the_subset():
    assert lean_payload('{"a": 1.50, "b": -0.0, "c": 1E2}') == b'{"a":1.5,"b":-0.0,"c":100.0}'
    for text in ('{"a": 1e16}', '{"a": 1e-7}', '{"a": 1e400}', '{"a": NaN}', '{"a": 1, "a": 2}', '[1]', '"x"', '{"a": 18446744073709551616}',
                 '{"a": "\\ud800"}', '{"a": 1', '{"a": "\x01"}', "{}" * 2, "[" * 100000):
        assert lean_payload(text) is None, text


# What a one-shot `pls feed POOL '{..}'` may import beyond the interpreter's
# start-up: these first-party modules, and the standard library without the
# modules that cost start-up time and that the path does not need.
ONESHOT_FIRST_PARTY = {
    "plasmite_cli", "plasmite_cli.main", "plasmite_cli.oneshot", "plasmite_cli.feeding",
    "plasmite_core", "plasmite_core.errors", "plasmite_core.records", "plasmite_core.format",
    "plasmite_core.locks", "plasmite_core.framescan", "plasmite_core.notify", "plasmite_core.pool",
    "plasmite_core.refs", "plasmite_core.rfc3339", "plasmite_core.speedups",
}
ONESHOT_HEAVY_STDLIB = {
    "typing", "pathlib", "threading", "importlib.metadata", "urllib", "ipaddress", "ctypes", "dataclasses",
    "inspect", "asyncio", "socket", "logging", "decimal", "datetime", "uuid", "tempfile", "subprocess",
}

_IMPORTS_OF_ONESHOT = """
import sys
before = set(sys.modules)
from plasmite_cli.main import run  # what the pls console script calls
rc = run(["feed", sys.argv[1], sys.argv[2]])
print(rc, " ".join(sorted(set(sys.modules) - before)), file=sys.stderr)
"""


def _oneshot_imports(pool_dir, ref: str, data: str) -> tuple[int, set[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "PLASMITE_DIR"}
    r = subprocess.run([sys.executable, "-c", _IMPORTS_OF_ONESHOT, ref, data], capture_output=True, text=True,
                       env={**env, "PLASMITE_DIR": str(pool_dir)}, timeout=120)
    rc, _, loaded = r.stderr.strip().splitlines()[-1].partition(" ")
    return int(rc), set(loaded.split()), r.stdout


def test_oneshot_feed_imports_no_more_than_it_needs(pool_dir):
    from plasmite import Client

    with Client(pool_dir) as c:
        c.create_pool("lean", size_bytes=1 << 20).close()
    for ref in ("lean", str(pool_dir / "lean.plasmite")):
        rc, loaded, out = _oneshot_imports(pool_dir, ref, '{"x": [1, "two", null]}')
        assert rc == 0 and json.loads(out)["meta"] == {"tags": []}
        first_party = {m for m in loaded if m.startswith("plasmite")}
        assert {m for m in first_party if not m.startswith("plasmite_speedups")} <= ONESHOT_FIRST_PARTY, first_party
        third_party = {m for m in loaded - first_party if m.partition(".")[0] not in sys.stdlib_module_names}
        assert third_party == set(), third_party  # click, msgspec, pluggy...
        heavy = {m for m in loaded if m in ONESHOT_HEAVY_STDLIB or m.partition(".")[0] in ONESHOT_HEAVY_STDLIB}
        assert heavy == set(), heavy
    with Client(pool_dir) as c, c.open_pool("lean") as p:
        assert [p.get(s).data for s in (1, 2)] == [{"x": [1, "two", None]}] * 2


def test_oneshot_feed_declines_to_the_full_path(pool_dir):
    # A missing pool takes the full path, which reports it (NotFound, exit 3).
    rc, loaded, out = _oneshot_imports(pool_dir, "missing", '{"x": 1}')
    assert rc == 3 and "plasmite_core.client" in loaded and out == ""


@pytest.mark.parametrize("pool_dir_env", ["", "{tmp}", "{tmp}/", "{tmp}//a/./b", "~/pools", "rel/pools"])
def test_resolve_pool_ref_text_names_the_file_resolve_pool_ref_names(pool_dir_env, tmp_path, monkeypatch):
    from plasmite_core.errors import UsageError
    from plasmite_core.refs import default_pool_dir, resolve_pool_ref, resolve_pool_ref_text

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLASMITE_DIR", pool_dir_env.format(tmp=tmp_path))
    for ref in ("chat", "chat.plasmite", "a-b_c.d", "./x.plasmite", "p//q/../x", "/abs/x.plasmite", "x/",
                "", "..", ".hidden", "bad name", "a" * 129, "http://host:9700/chat", "nul\0", "chat\n"):
        try:
            expected = resolve_pool_ref(ref, default_pool_dir())
        except UsageError:
            expected = None
        text = resolve_pool_ref_text(ref)
        assert (Path(text) if text is not None else None) == expected, ref


def test_resolve_pool_ref_text_leaves_an_unexpandable_home_to_the_full_path(monkeypatch):
    from plasmite_core.refs import resolve_pool_ref_text

    monkeypatch.setenv("PLASMITE_DIR", "~no-such-user-here/pools")
    assert resolve_pool_ref_text("chat") is None


def test_oneshot_feed_errors_name_the_normalized_path(tmp_path):
    # The lean path opens the pool by a text path; an error after the open
    # (here: larger than the ring) still names it as a Path would.
    from plasmite import Client
    from plasmite_core.pool import PoolFile

    with Client(tmp_path) as c:
        c.create_pool("small", size_bytes=64 * 1024).close()
    pf = PoolFile.open(f"{tmp_path}//./small.plasmite")
    try:
        assert pf.path == tmp_path / "small.plasmite" and isinstance(pf.path, Path)
    finally:
        pf.close()
    env = {k: v for k, v in os.environ.items() if k != "PLASMITE_DIR"}
    r = subprocess.run([sys.executable, "-m", "plasmite_cli", "feed", "small", json.dumps({"x": "y" * 100_000})],
                       capture_output=True, text=True, env={**env, "PLASMITE_DIR": f"{tmp_path}//./"}, timeout=120)
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 2 and err["kind"] == "Usage" and err["path"] == str(tmp_path / "small.plasmite"), r.stderr
