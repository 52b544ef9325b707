"""The ``jq`` filter plugin (plasmite-jq) behind ``pls follow --where``."""

from __future__ import annotations

import importlib.metadata

import pytest

try:  # the installed distribution, not the checkout folder of the same name
    importlib.metadata.distribution("plasmite-jq")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("plasmite-jq is not installed", allow_module_level=True)

from plasmite_core import plugins  # noqa: E402
from plasmite_core.errors import UsageError  # noqa: E402

ENVELOPE = {"seq": 7, "time": "2026-01-02T03:04:05.000000001Z", "meta": {"tags": ["a", "b"]},
            "data": {"status": "green", "n": 3, "msg": "kernel panic"}}
RAW = b'{"seq":7,"time":"2026-01-02T03:04:05.000000001Z","meta":{"tags":["a","b"]},' \
      b'"data":{"status":"green","n":3,"msg":"kernel panic"}}'


def jq(expr):
    plugins.reset()
    return plugins.filter_factory("jq")(expr)


@pytest.mark.parametrize("expr, expected", [
    ('.data.status == "green"', True),
    ('.data.status == "red"', False),
    (".data.n > 2 and .seq == 7", True),
    ('.meta.tags | index("b") != null', True),
    ('.data.msg | test("panic")', True),
    (".data.missing.deeper == 1", False),
    (".data.msg.x == 1", False),          # runtime error (index a string): no match
    (".data.n, .data.n > 10 | . == 3", True),  # any true output matches
])
def test_semantics_on_dict_and_raw(expr, expected):
    pred = jq(expr)
    assert pred(ENVELOPE) is expected
    assert pred(RAW) is expected
    assert pred(RAW.decode()) is expected


def test_compiled_once_and_reused():
    pred = jq(".data.n == 3")
    program = pred._program
    for _ in range(3):
        assert pred(ENVELOPE)
    assert pred._program is program


def test_non_boolean_result_is_usage_error():
    with pytest.raises(UsageError) as exc:
        jq(".data.n")(ENVELOPE)
    assert "booleans" in str(exc.value) and exc.value.hint


@pytest.mark.parametrize("expr", [".data |||", "", "   "])
def test_invalid_expression_is_usage_error(expr):
    with pytest.raises(UsageError) as exc:
        jq(expr)
    assert exc.value.hint


def test_registered_through_the_plugin_hook():
    plugins.reset()
    assert "jq" in plugins.filters()
    names = {p["name"]: p for p in plugins.list_plugins()}
    assert names["jq"]["distribution"] == "plasmite-jq" and names["jq"]["hooks"] == ["register_filters"]
