"""The msgpack codec, and how plasmite-codecs registers its codecs with pluggy."""

from __future__ import annotations

import json

import msgpack
import pluggy
import pytest

from plasmite_core.errors import CorruptError, UsageError
from plasmite_codecs import get_codec, msgpack_codec, plugin
from plasmite_codecs.lite3 import Lite3Codec
from plasmite_codecs.msgpack_codec import MsgpackCodec

VALUES = [
    {},
    [],
    {"a": 1, "b": [1, 2.5, None, True, False, "s"], "c": {"d": "é✓😀"}},
    [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.0, -0.0, 1e300],
    {"nested": [[[[{"x": "y"}]]]]},
]


@pytest.mark.parametrize("value", VALUES)
def test_roundtrip(value):
    codec = MsgpackCodec()
    buf = codec.encode(value)
    assert isinstance(buf, bytes)
    assert codec.decode(buf) == value
    # JSON text in and out
    text = json.dumps(value).encode()
    assert json.loads(codec.to_json(codec.from_json(text))) == value
    assert json.loads(codec.to_json(buf)) == value


def test_wire_format_is_plain_msgpack():
    buf = msgpack_codec.encode({"a": [1, "x", b"\x00"]})
    assert buf == msgpack.packb({"a": [1, "x", b"\x00"]}, use_bin_type=True)
    assert msgpack_codec.to_json(buf) == b'{"a":[1,"x","AA=="]}'


def test_to_json_is_compact():
    assert msgpack_codec.to_json(msgpack_codec.encode({"a": [1, 2], "b": None})) == b'{"a":[1,2],"b":null}'


@pytest.mark.parametrize("bad", [b"", b"\x92\x01", b"\xc1", b"\x81\x01\x02", b"\x01\x02", b"\xdb\xff\xff\xff\xff"])
def test_bad_payload_is_corrupt(bad):
    with pytest.raises(CorruptError) as info:
        msgpack_codec.decode(bad)
    assert info.value.kind.label == "Corrupt"
    with pytest.raises(CorruptError):
        msgpack_codec.to_json(bad)


def test_extension_types_have_no_json_form():
    buf = msgpack.packb(msgpack.ExtType(5, b"xx"))
    with pytest.raises(CorruptError, match="JSON"):
        msgpack_codec.to_json(buf)
    with pytest.raises(CorruptError, match="extension"):
        msgpack_codec.decode(buf)
    stamp = msgpack.packb(msgpack.Timestamp(1, 2))
    with pytest.raises(CorruptError, match="JSON"):
        msgpack_codec.to_json(stamp)
    with pytest.raises(CorruptError):
        msgpack_codec.to_json(msgpack.packb({1: 2}))


@pytest.mark.parametrize("bad", [b"", b"{", b"[1,]", b"nope", b"\xff"])
def test_bad_json_is_usage(bad):
    with pytest.raises(UsageError):
        msgpack_codec.from_json(bad)


def test_unencodable_value_is_usage():
    with pytest.raises(UsageError):
        msgpack_codec.encode({"a": object()})
    with pytest.raises(UsageError):
        msgpack_codec.encode(2**70)


# -- registration -----------------------------------------------------------


def test_register_codecs_hook_registers_both():
    got = {}
    plugin.register_codecs(lambda name, codec: got.__setitem__(name, codec))
    assert set(got) == {"msgpack", "lite3"}
    for name, codec in got.items():
        assert codec.name == name
        for attr in ("encode", "decode", "to_json", "from_json"):
            assert callable(getattr(codec, attr))
    doc = {"k": [1, "two", 3.0]}
    for codec in got.values():
        assert codec.decode(codec.encode(doc)) == doc
        assert json.loads(codec.to_json(codec.from_json(b'{"k":[1,"two",3.0]}'))) == doc


def test_hook_is_seen_by_a_real_plugin_manager():
    spec = pluggy.HookspecMarker("plasmite")

    class Specs:
        @spec
        def register_codecs(self, register):
            """Register payload codecs."""

    pm = pluggy.PluginManager("plasmite")
    pm.add_hookspecs(Specs)
    pm.register(plugin, name="codecs")
    got = {}
    pm.hook.register_codecs(register=lambda name, codec: got.__setitem__(name, codec))
    assert isinstance(got["lite3"], Lite3Codec)
    assert isinstance(got["msgpack"], MsgpackCodec)


def test_get_codec():
    assert get_codec("lite3").name == "lite3"
    assert get_codec("msgpack").name == "msgpack"
    with pytest.raises(UsageError):
        get_codec("nope")


def test_core_plugin_manager_finds_codecs_when_installed():
    plugins = pytest.importorskip("plasmite_core.plugins")
    from importlib.metadata import entry_points

    if not any(ep.value == "plasmite_codecs.plugin" for ep in entry_points(group="plasmite")):
        pytest.skip("plasmite-codecs is not installed (entry point absent)")
    assert plugins.codec("lite3").name == "lite3"
    assert plugins.codec("msgpack").name == "msgpack"
