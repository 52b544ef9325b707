"""Plugins arrive and leave through entry points, with no change to the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plasmite_core import plugins

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugins" / "plasmite_example_codec"

PROBE = (
    "from plasmite_core import plugins; import json; "
    "print(json.dumps({'codecs': sorted(plugins.codecs()), 'plugins': [p['name'] for p in plugins.list_plugins()]}))"
)


def _probe(**env: str) -> dict:
    import json
    import os

    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True,
                         env={**os.environ, **env}).stdout
    return json.loads(out)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def test_builtin_json_codec_needs_no_scan():
    from plasmite_core.codecs import JSON

    assert plugins.codec("json") is JSON


def test_unknown_codec_is_a_usage_error_with_hint():
    from plasmite import UsageError

    with pytest.raises(UsageError) as e:
        plugins.codec("nope")
    assert "installed codecs" in e.value.hint


@pytest.mark.slow
def test_installing_example_plugin_adds_codec_and_uninstalling_removes_it(tmp_path, monkeypatch):
    # tox loads only this project's plugins (PLASMITE_LOAD_PLUGINS=""); this test names its own.
    monkeypatch.setenv("PLASMITE_LOAD_PLUGINS", "example_codec")
    before = _probe()
    assert "zjson" not in before["codecs"]
    _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE))
    try:
        after = _probe()
        assert "zjson" in after["codecs"] and "example_codec" in after["plugins"]
        ignored = _probe(PLASMITE_LOAD_PLUGINS="")  # installed, but not asked for
        assert "zjson" not in ignored["codecs"] and "codecs" in ignored["plugins"]
        by_dist = _probe(PLASMITE_LOAD_PLUGINS="plasmite-example-codec")
        assert "zjson" in by_dist["codecs"]
        # a pool created with it stores compressed payloads and reads back JSON
        code = (
            "import sys; from plasmite import Client; c = Client(sys.argv[1]); "
            "p = c.create_pool('z', codec='zjson'); p.append({'msg': 'hi' * 50}, ['t']); "
            "m = c.open_pool('z').get(1); print(m.data == {'msg': 'hi' * 50}, c.pool_info('z').codec)"
        )
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True, text=True).stdout
        assert out.split() == ["True", "zjson"]
    finally:
        _pip("uninstall", "-y", "plasmite-example-codec")
    gone = _probe()
    assert "zjson" not in gone["codecs"] and "example_codec" not in gone["plugins"]
    # the pool now names the missing codec instead of failing obscurely
    code = "import sys; from plasmite import Client; Client(sys.argv[1]).open_pool('z')"
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert res.returncode != 0 and "zjson" in res.stderr and "UsageError" in res.stderr


def test_plugin_modules_named_in_the_environment_are_registered(monkeypatch):
    from plasmite import UsageError

    monkeypatch.setenv("PLASMITE_PLUGINS", "dirpool_transport,plasmite_jq")  # a test module; an installed one
    plugins.reset()
    try:
        assert "dirpool" in plugins.transports() and "jq" in plugins.filters()
        monkeypatch.setenv("PLASMITE_PLUGINS", "no_such_plugin_module")
        plugins.reset()
        with pytest.raises(UsageError) as e:
            plugins.filters()
        assert "PLASMITE_PLUGINS" in e.value.message
    finally:
        monkeypatch.delenv("PLASMITE_PLUGINS")
        plugins.reset()
