"""The compiled Message fields (plasmite_speedups._message) against their
pure-Python reference (plasmite_core.envelope._MessageFields): same data, same
envelope bytes, same errors, on valid and forged bytes; and the object
behaves like a Python one (keywords, subclasses, garbage collection)."""

from __future__ import annotations

import gc

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plasmite_core import envelope
from plasmite_core.envelope import Message

_message = pytest.importorskip("plasmite_speedups._message", reason="plasmite-speedups built without its C extension")
if not envelope.COMPILED:
    pytest.skip("the compiled Message is not in use (PLASMITE_PURE)", allow_module_level=True)

# Message's own methods on the pure base: the reference class, in this process.
PureMessage = type("Message", (envelope._MessageFields,),
                   {k: v for k, v in vars(Message).items() if k not in ("__slots__", "__dict__", "__weakref__")})


class _Upper:
    """A codec that is not JSON: its bytes are JSON upper-cased (decode fails on a lowercase 'x')."""

    name = "upper"

    def decode(self, b: bytes):
        if b"x" in b:
            raise ValueError("lowercase x")
        return msgspec.json.decode(b.lower())

    def to_json(self, b: bytes) -> bytes:
        return msgspec.json.encode(self.decode(b))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                     max_leaves=8)
_payload = (_json.map(msgspec.json.encode)
            | st.binary(max_size=24)
            | st.sampled_from([b"", b"{", b'{"a":1} {}', b'1},"x":{', b'"\xff"', b'{"a":"\xc3\xa9"}', b"{}\n"]))
_tags = (st.lists(st.text(min_size=1, max_size=6), max_size=3).map(lambda t: msgspec.json.encode(t) if t else b"")
         | st.sampled_from([b"[1]", b"[", b'["a"', b'"a"', b'["\xff"]', b"{}"]))
_time = st.integers(0, (1 << 62)) | st.sampled_from([0, 1_700_000_000_123_456_789, 253_402_300_800_000_000_000])


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # the exact error is part of the contract
        return (type(exc).__name__, str(exc))


@settings(max_examples=400, deadline=None)
@given(seq=st.integers(0, 1 << 63), t=_time, tags_raw=_tags, payload=_payload,
       codec=st.sampled_from([None, _Upper()]), order=st.sampled_from(["data", "raw", "tags"]))
def test_data_raw_and_errors_match_the_reference(seq, t, tags_raw, payload, codec, order):
    got, want = Message(seq, t, tags_raw, payload, codec), PureMessage(seq, t, tags_raw, payload, codec)
    steps = {"data": lambda m: m.data, "raw": lambda m: m.raw, "tags": lambda m: m.tags}
    names = [order] + [n for n in steps if n != order]
    for name in names + names:  # twice: the second access reads what the first cached
        assert _outcome(lambda: steps[name](got)) == _outcome(lambda: steps[name](want)), name
    assert (got._data is envelope._NO) == (want._data is envelope._NO)
    assert got._raw == want._raw and got._tags == want._tags


def test_given_data_tags_and_raw_are_used_as_given():
    m = Message(3, 5, b"", b"", None, {"a": 1})
    assert m.data == {"a": 1} and m.raw == PureMessage(3, 5, b"", b"", None, {"a": 1}).raw
    parts = Message.from_parts(4, 6, ["x"], {"b": 2})
    assert parts.raw == b'{"seq":4,"time":"1970-01-01T00:00:00.000000006Z","meta":{"tags":["x"]},"data":{"b":2}}'
    kw = Message(seq=1, time_ns=2, tags_raw=b"", payload=b"{}")
    assert (kw.seq, kw.time_ns, kw.data) == (1, 2, {})
    with pytest.raises(TypeError):
        Message(1, 2, b"")


def test_bound_subclass_names_the_pool_in_corrupt_errors(tmp_path):
    from plasmite_core.client import Client

    with Client(tmp_path) as c, c.create_pool("p", 64 * 1024) as p:
        built = _message.build(p._message, [(1, 2, b"", b"{bad"), (2, 3, b"[1]", b"{}")], None)
        assert [type(m) for m in built] == [p._message] * 2
        for m, what in ((built[0], "data"), (built[1], "raw")):
            with pytest.raises(Exception) as ei:
                getattr(m, what)
            assert type(ei.value).__name__ == "CorruptError" and str(p.path) in str(ei.value)


def test_build_refuses_what_is_not_frames():
    with pytest.raises(TypeError):
        _message.build(dict, [], None)
    with pytest.raises(TypeError):
        _message.build(Message, ((1, 2, b"", b"{}"),), None)
    with pytest.raises(TypeError):
        _message.build(Message, [(1, 2, b"")], None)
    assert _message.build(Message, [], None) == []


def test_a_message_in_a_reference_cycle_is_collected():
    freed = []

    class Probe:
        def __del__(self):
            freed.append(True)

    m = Message(1, 2, b"", b"{}")
    m._data = {"me": m, "probe": Probe()}
    assert gc.is_tracked(m)
    del m
    gc.collect()
    assert freed == [True]


# -- groups: the messages of one build decode and check their payloads together

_valid = _json.map(msgspec.json.encode)
_bad = st.sampled_from([b"", b"{", b'{"a":1} {}', b'1},"x":{', b'"\xff"', b"{}\n", b"1\n2", b" ", b"[1", b"]"])


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(_valid, min_size=2, max_size=90),
       bad=st.lists(st.tuples(st.integers(0, 89), _bad), max_size=3),
       tags=st.lists(_tags, min_size=1, max_size=4),
       plan=st.lists(st.tuples(st.integers(0, 89), st.sampled_from(["data", "raw", "tags", "drop"])), max_size=120))
def test_a_group_gives_each_message_what_the_reference_gives(payloads, bad, tags, plan):
    for i, b in bad:
        if i < len(payloads):
            payloads[i] = b
    frames = [(i + 1, 1_700_000_000_000_000_000 + i, tags[i % len(tags)], pl) for i, pl in enumerate(payloads)]
    got = envelope.build_messages(Message, frames, None)
    want = [PureMessage(*f) for f in frames]
    steps = {"data": lambda m: m.data, "raw": lambda m: m.raw, "tags": lambda m: m.tags}
    for i, what in plan:
        if i >= len(frames):
            continue
        if what == "drop":  # a member that dies before the group decodes
            got[i] = want[i] = None
        elif got[i] is not None:
            assert _outcome(lambda: steps[what](got[i])) == _outcome(lambda: steps[what](want[i])), (i, what)
    for g, w in zip(got, want):  # every survivor, in order, ends the same
        if g is not None:
            assert _outcome(lambda: g.raw) == _outcome(lambda: w.raw)
            assert _outcome(lambda: g.data) == _outcome(lambda: w.data)


def test_the_first_data_read_decodes_a_bounded_run_of_neighbours():
    frames = [(i, i, b"", msgspec.json.encode({"i": i})) for i in range(200)]
    ms = envelope.build_messages(Message, frames, None)
    assert ms[10].data == {"i": 10}
    assert ms[9]._data is envelope._NO  # earlier members are left alone
    assert [m._data for m in ms[11:74]] == [{"i": i} for i in range(11, 74)]
    assert ms[74]._data is envelope._NO  # at most 64 per call: a bounded burst
    assert ms[74].data == {"i": 74} and ms[75]._data == {"i": 75}


def test_a_group_keeps_no_member_bytes_or_values_alive():
    import sys

    payloads = [msgspec.json.encode({"i": i, "pad": "y" * 30}) for i in range(100)]
    def refs() -> list[int]:
        return [sys.getrefcount(p) for p in payloads]

    base = refs()
    ms = envelope.build_messages(Message, [(i, i, b"", p) for i, p in enumerate(payloads)], None)
    keep = ms[50]
    ms[0].raw  # checks a run of neighbours
    ms[1].data  # decodes a run of neighbours
    kept_value = keep.data
    del ms
    # only the survivor holds its payload; the group held none of the others
    assert [now - b for now, b in zip(refs(), base)] == [1 if i == 50 else 0 for i in range(100)]
    assert keep.data is kept_value and keep.raw.endswith(payloads[50] + b"}")
