"""The lean one-shot feed encodes exactly what msgspec (the full path) stores,
and declines every value outside its subset."""

from __future__ import annotations

import json

import msgspec
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
