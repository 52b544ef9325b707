"""Lite3 properties: JSON round trips, agreement of the fast and full encoders,
point lookups, the message recipe, and hostile buffers.

Round trips are exact up to the format's documented normalisations
(docs/lite3.md): object members come back in hash order, duplicate keys keep
the last value, keys are cut at the first NUL, integers outside int64 become
doubles.
"""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plasmite_core.errors import CorruptError, PlasmiteError, UsageError
from plasmite_codecs import lite3

# -- strategies --------------------------------------------------------------

_keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["a", "b", "az", "bY", "c8", "a{", "k5", "p030N5N66", "w2FLL0?D", "x2O;4P7K", "", "a\x00b", "a\x00c"]),
    st.text(min_size=60, max_size=70),
)
_ints = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64, 10**30]),
)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_strings = st.one_of(st.text(max_size=20), st.text(min_size=85, max_size=100), st.sampled_from(["\x00", "a\x00b", "\x7f", "\u2028", "/", '"\\']))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _strings)


class Obj(list):
    """Test-side object: (key, value) pairs, duplicates allowed."""


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=12),
        st.lists(st.tuples(_keys, children), max_size=12).map(Obj),
    )


_values = st.recursive(_scalars, _containers, max_leaves=60)
_roots = _containers(_values)
_wide = st.one_of(
    st.lists(st.tuples(_keys, _scalars), min_size=20, max_size=120).map(Obj),
    st.lists(_scalars, min_size=20, max_size=120),
)


def dump(v) -> str:
    """JSON text for a test value, duplicates and member order kept."""
    if isinstance(v, Obj):
        return "{" + ",".join(json.dumps(k) + ":" + dump(x) for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)  # always has '.', 'e' or is '-0.0'-like: parsed back as a double
    return json.dumps(v)


def normalise(v):
    """What a Lite3 round trip gives back, as plain Python."""
    if isinstance(v, Obj):
        out = {}
        for k, x in v:
            out[k.split("\x00", 1)[0]] = normalise(x)
        return out
    if isinstance(v, list):
        return [normalise(x) for x in v]
    if type(v) is int and not (-(2**63) <= v < 2**63):
        return float(v)
    return v


def to_python(v):
    """The test value as the dict/list value encode() takes (duplicates: last wins)."""
    if isinstance(v, Obj):
        return {k: to_python(x) for k, x in v}
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_python(x) for x in v]
    return v


def same(a, b) -> bool:
    """Equality that also tells int from float and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def _parse_out(text: bytes):
    return json.loads(text)


def _build(text: bytes, fast: bool) -> bytes:
    saved = lite3._Builder.fast
    lite3._Builder.fast = fast
    try:
        return lite3.from_json(text)
    finally:
        lite3._Builder.fast = saved


# -- round trips ----------------------------------------------------------------

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(_roots)
def test_json_roundtrip_is_identity_up_to_normalisation(doc):
    text = dump(doc).encode()
    try:
        buf = lite3.from_json(text)
    except UsageError as exc:
        # the one input the reference refuses: colliding keys of different tag lengths
        assert "collides" in exc.message
        return
    expected = normalise(doc)
    out = lite3.to_json(buf)
    assert same(_parse_out(out), expected)
    assert same(lite3.decode(buf), expected)
    # compact: no whitespace outside strings, and the pretty form parses to the same
    assert same(json.loads(lite3.to_json(buf, pretty=True)), expected)
    # encoding the decoded value again keeps the value
    assert same(lite3.decode(lite3.encode(lite3.decode(buf))), expected)


@SETTINGS
@given(st.one_of(_roots, _wide))
def test_fast_paths_match_full_algorithm(doc):
    text = dump(doc).encode()
    try:
        fast = _build(text, True)
    except UsageError:
        with pytest.raises(UsageError):
            _build(text, False)
        return
    assert _build(text, False) == fast


@SETTINGS
@given(_roots)
def test_encode_python_value_matches_json_text(doc):
    value = to_python(doc)
    text = json.dumps(value, allow_nan=False).encode()
    try:
        from_text = lite3.from_json(text)
    except UsageError:
        return
    assert lite3.encode(value) == from_text


def _paths(v, prefix=()):
    yield prefix, v
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _paths(x, prefix + (i,))


@SETTINGS
@given(st.one_of(_roots, _wide))
def test_lookup_finds_every_path(doc):
    try:
        buf = lite3.from_json(dump(doc).encode())
    except UsageError:
        return
    value = lite3.decode(buf)
    for path, expected in _paths(value):
        assert same(lite3.lookup(buf, path), expected)
        assert same(json.loads(lite3.lookup_json(buf, path)), expected)
    assert lite3.lookup(buf, ("\x01missing",)) is lite3.MISSING
    assert lite3.lookup(buf, (10**6,)) is lite3.MISSING


_tags = st.lists(st.text(max_size=8), max_size=5)
_data = st.dictionaries(st.text(max_size=8), _values, max_size=10).map(to_python)


@SETTINGS
@given(_tags, _data)
def test_message_recipe_matches_serde_text(tags, data):
    # upstream: serde_json writes meta first, then data with sorted keys
    text = '{"meta":' + json.dumps({"tags": tags}) + ',"data":' + json.dumps(data, sort_keys=True) + "}"
    try:
        expected = lite3.from_json(text.encode())
    except UsageError:
        return
    assert lite3.encode_message(tags, data) == expected
    assert lite3.get_tags(expected) == tags
    got_tags, data_json = lite3.parse_message(expected)
    assert got_tags == tags
    assert same(json.loads(data_json), normalise(to_obj(data)))


def to_obj(v):
    """dicts to Obj with sorted keys, the order serde_json writes them in."""
    if isinstance(v, dict):
        return Obj((k, to_obj(v[k])) for k in sorted(v))
    if isinstance(v, list):
        return [to_obj(x) for x in v]
    return v


@SETTINGS
@given(_floats)
def test_double_text_parses_back_exactly(x):
    s = lite3.format_double(x)
    assert "." in s or "e" in s
    assert "+" not in s
    y = float(s)
    assert y == x and math.copysign(1, y) == math.copysign(1, x)


# -- hostile buffers -------------------------------------------------------------

def _exercise(buf: bytes) -> None:
    """Every reader entry point either succeeds or raises a PlasmiteError."""
    for call in (
        lambda: lite3.to_json(buf),
        lambda: lite3.to_json(buf, pretty=True),
        lambda: lite3.decode(buf),
        lambda: lite3.lookup(buf, ("meta", "tags")),
        lambda: lite3.lookup(buf, ("a",)),
        lambda: lite3.lookup(buf, (0, 1)),
        lambda: lite3.lookup_json(buf, ("data",)),
        lambda: lite3.get_tags(buf),
        lambda: lite3.parse_message(buf),
    ):
        try:
            call()
        except PlasmiteError:
            pass


@st.composite
def _damaged(draw):
    doc = draw(st.one_of(_roots, _wide))
    try:
        buf = bytearray(lite3.from_json(dump(doc).encode()))
    except UsageError:
        buf = bytearray(lite3.encode_message(["t"], {"a": 1}))
    how = draw(st.sampled_from(["flip", "u32", "truncate", "both"]))
    if how in ("truncate", "both"):
        buf = buf[: draw(st.integers(0, len(buf)))]
    if how in ("flip", "both") and buf:
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
    if how == "u32" and len(buf) >= 4:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf) - 4))
            val = draw(st.one_of(st.integers(0, len(buf) + 8), st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF])))
            struct.pack_into("<I", buf, i, val)
    return bytes(buf)


@settings(max_examples=200, deadline=10000, suppress_health_check=list(HealthCheck))
@given(_damaged())
def test_damaged_buffers_raise_only_plasmite_errors(buf):
    _exercise(buf)


@settings(max_examples=200, deadline=10000, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_plasmite_errors(data):
    _exercise(data)
    _exercise(b"\x06" + data)
    _exercise(b"\x07" + bytes(95) + data)


def _node(typ, hashes=(), kvs=(), kids=(), size=None, gen=0):
    kc = len(hashes)
    size = kc if size is None else size
    return struct.pack(
        "<I7II7I8I", typ | gen << 8, *(list(hashes) + [0] * (7 - kc)), kc | size << 6,
        *(list(kvs) + [0] * (7 - kc)), *(list(kids) + [0] * (8 - len(kids))),
    )


def test_shared_children_cannot_blow_up():
    # Every child pointer of every internal node points at the same node: a
    # naive walk would visit 8**9 nodes. The budget stops it almost at once.
    hs = [10, 20, 30, 40, 50, 60, 70]
    inner = _node(6, hashes=hs, kvs=[0] * 7, kids=[96] * 8, size=0)
    buf = _node(6, hashes=hs, kvs=[0] * 7, kids=[96] * 8, size=100000) + inner
    for fn in (lite3.to_json, lite3.decode):
        with pytest.raises(CorruptError, match="overlap"):
            fn(buf)


def test_child_cycle_is_corrupt():
    buf = _node(6, hashes=[5], kvs=[200], kids=[96, 96]) + _node(6, hashes=[4], kvs=[200], kids=[96, 96]) + bytes(16)
    with pytest.raises(CorruptError):
        lite3.to_json(buf)
    with pytest.raises(PlasmiteError):
        lite3.lookup(buf, ("zz",))


def test_overlapping_strings_are_bounded():
    # many entries all pointing at one big string: more bytes referenced than
    # the buffer holds, which no real document does
    big = b"k" * 5000
    entry = b"\x08a\x00" + b"\x05" + struct.pack("<I", len(big) + 1) + big + b"\x00"
    leaf = _node(6, hashes=[1, 2, 3, 4, 5, 6, 7], kvs=[96] * 7)
    buf = leaf + entry
    with pytest.raises(CorruptError):
        lite3.to_json(buf)


def test_reader_extra_checks():
    good = lite3.from_json(b'{"a":true,"s":"x"}')
    # bool byte other than 0/1
    i = good.index(b"\x01\x01")
    bad = good[: i + 1] + b"\x02" + good[i + 2 :]
    with pytest.raises(CorruptError, match="bool"):
        lite3.to_json(bad)
    # string without its NUL
    j = good.rindex(b"x\x00")
    with pytest.raises(CorruptError):
        lite3.to_json(good[: j + 1] + b"y" + good[j + 2 :])
    # size field that disagrees with the entries
    bad = bytearray(good)
    struct.pack_into("<I", bad, 32, 2 | (3 << 6))
    with pytest.raises(CorruptError, match="size"):
        lite3.decode(bytes(bad))


def test_encoder_refusals():
    for bad in (b"1", b'"x"', b"null", b"", b"[NaN]", b'{"a":1e999}', b"[1,]", b"\xef\xbb\xbf{}",
                b'["\\ud800"]', b"[" * 33 + b"]" * 33, b"[" * 100000, b"[" + b"1" * 5000 + b"]",
                b"[" + b"9" * 400 + b"]"):
        with pytest.raises(UsageError):
            lite3.from_json(bad)
    for bad in (1, "x", None, {"a": float("nan")}, {"a": float("inf")}, {1: 2}, {"a": object()},
                {"a": 10**400}, ["\ud800"], {"\udc00": 1}):
        with pytest.raises(UsageError):
            lite3.encode(bad)
    deep: list = []
    cur = deep
    for _ in range(40):
        cur.append([])
        cur = cur[0]
    with pytest.raises(UsageError, match="32"):
        lite3.encode(deep)
    loop: list = []
    loop.append(loop)
    cyclic: dict = {}
    cyclic["a"] = cyclic
    for value in (loop, cyclic):
        with pytest.raises(UsageError, match="32"):
            lite3.encode(value)
    with pytest.raises(UsageError, match="32"):
        lite3.encode_message([], cyclic)
    # 32 levels are fine
    ok: list = []
    cur = ok
    for _ in range(31):
        cur.append([])
        cur = cur[0]
    assert lite3.decode(lite3.encode(ok)) == ok


def test_python_types():
    value = {"b": b"\x00\xff", "t": (1, 2), "ba": bytearray(b"x"), "big": 2**64, "neg0": -0.0}
    got = lite3.decode(lite3.encode(value))
    assert got == {"b": b"\x00\xff", "t": [1, 2], "ba": b"x", "big": float(2**64), "neg0": -0.0}
    assert math.copysign(1, got["neg0"]) == -1
    assert lite3.to_json(lite3.encode({"b": b"\x00\xff"})) == b'{"b":"AP8="}'
