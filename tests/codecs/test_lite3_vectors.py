"""The reference Lite3 vectors as tests: exact bytes, exact JSON, and every refusal.

The vectors live beside the checkout (``../shared/vectors/lite3``); when that
directory is absent the whole module is skipped.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from plasmite_core.errors import CorruptError, PlasmiteError, UsageError
from plasmite_codecs import lite3

VECTOR_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "lite3"
VECTOR_FILE = VECTOR_DIR / "vectors.jsonl"

if not VECTOR_FILE.is_file():
    pytest.skip(f"Lite3 vectors not found at {VECTOR_DIR}", allow_module_level=True)

VECTORS = [json.loads(line) for line in VECTOR_FILE.read_text("utf-8").splitlines() if line.strip()]


def _kind(*kinds):
    return [pytest.param(v, id=v["name"]) for v in VECTORS if v["kind"] in kinds]


def _input(v) -> bytes:
    if v.get("json_hex"):
        return bytes.fromhex(v["json_hex"])
    return (v["json"] or "").encode("utf-8")


def test_vector_file_is_complete():
    counts: dict[str, int] = {}
    for v in VECTORS:
        counts[v["kind"]] = counts.get(v["kind"], 0) + 1
    assert counts == {"encode": 79, "scalar_root": 4, "encode_error": 27, "decode_only": 4, "decode_error": 14}


@pytest.mark.parametrize("v", _kind("encode"))
def test_encode_is_byte_identical(v):
    expected = bytes.fromhex(v["lite3_hex"])
    assert len(expected) == v["lite3_len"]
    assert lite3.from_json(_input(v)) == expected
    # str input is accepted too
    assert lite3.from_json(_input(v).decode("utf-8")) == expected


@pytest.mark.parametrize("v", _kind("encode"))
def test_decode_gives_roundtrip_json(v):
    buf = bytes.fromhex(v["lite3_hex"])
    assert lite3.to_json(buf) == v["roundtrip_json"].encode("utf-8")
    if "roundtrip_json_pretty" in v:
        assert lite3.to_json(buf, pretty=True) == v["roundtrip_json_pretty"].encode("utf-8")
    # the same bytes from other buffer types
    assert lite3.to_json(bytearray(buf)) == v["roundtrip_json"].encode("utf-8")
    assert lite3.to_json(memoryview(buf)) == v["roundtrip_json"].encode("utf-8")


@pytest.mark.parametrize("v", _kind("encode"))
def test_reencode_roundtrip_json(v):
    buf = bytes.fromhex(v["lite3_hex"])
    again = lite3.from_json(v["roundtrip_json"].encode("utf-8"))
    assert (again == buf) is v["reencode_same_bytes"]
    # same value; the text is the same too unless colliding keys swap which
    # one owns the unprobed hash (hash_probe_wraps)
    assert lite3.decode(again) == json.loads(v["roundtrip_json"])
    if v["reencode_same_bytes"]:
        assert lite3.to_json(again) == v["roundtrip_json"].encode("utf-8")


@pytest.mark.parametrize("v", _kind("encode"))
def test_python_decode_and_encode(v):
    buf = bytes.fromhex(v["lite3_hex"])
    value = lite3.decode(buf)
    assert value == json.loads(v["roundtrip_json"])
    # dicts come back in document (hash) order, so encoding the decoded value
    # replays the round-trip text's operations exactly
    assert lite3.encode(value) == lite3.from_json(v["roundtrip_json"].encode("utf-8"))


@pytest.mark.parametrize("v", _kind("encode"))
def test_lookup_every_top_level_member(v):
    buf = bytes.fromhex(v["lite3_hex"])
    value = json.loads(v["roundtrip_json"])
    members = value.items() if isinstance(value, dict) else enumerate(value)
    for key, member in members:
        assert lite3.lookup(buf, (key,)) == member
        got = lite3.lookup_json(buf, (key,))
        assert json.loads(got) == member
    assert lite3.lookup(buf, ()) == value
    assert lite3.lookup(buf, ("no such key \x01",)) is lite3.MISSING
    assert lite3.lookup_json(buf, ("no such key \x01",)) is None
    if isinstance(value, list):
        assert lite3.lookup(buf, (len(value),)) is lite3.MISSING
        if value:
            assert lite3.lookup(buf, (-1,)) == value[-1]


@pytest.mark.parametrize("v", _kind("scalar_root"))
def test_scalar_root_is_refused(v):
    # The reference returns zero bytes here (a defect); we refuse clearly.
    with pytest.raises(UsageError, match="object or an array"):
        lite3.from_json(_input(v))
    assert v["lite3_hex"] == ""
    with pytest.raises(CorruptError):
        lite3.to_json(b"")


@pytest.mark.parametrize("v", _kind("encode_error"))
def test_encode_error_is_usage(v):
    with pytest.raises(UsageError) as info:
        lite3.from_json(_input(v))
    assert info.value.kind.label == "Usage"
    assert info.value.message


@pytest.mark.parametrize("v", _kind("decode_only"))
def test_decode_only(v):
    buf = bytes.fromhex(v["lite3_hex"])
    assert lite3.to_json(buf) == v["roundtrip_json"].encode("utf-8")
    value = lite3.decode(buf)
    expected = json.loads(v["roundtrip_json"])
    # bytes values decode to ``bytes``; JSON shows them as base64
    def b64(x):
        return base64.b64encode(x).decode() if isinstance(x, bytes) else x

    as_b64 = {k: b64(x) for k, x in value.items()} if isinstance(value, dict) else [b64(x) for x in value]
    assert any(isinstance(x, bytes) for x in (value.values() if isinstance(value, dict) else value))
    assert as_b64 == expected
    # and encoding the Python value reproduces the bytes type
    assert lite3.to_json(lite3.encode(value)) == v["roundtrip_json"].encode("utf-8")


@pytest.mark.parametrize("v", _kind("decode_error"))
def test_decode_error_is_corrupt(v):
    buf = bytes.fromhex(v["lite3_hex"])
    for fn in (lite3.to_json, lite3.decode, lite3.validate):
        with pytest.raises(CorruptError) as info:
            fn(buf)
        assert info.value.kind.label == "Corrupt"


@pytest.mark.parametrize("v", _kind("decode_error"))
def test_decode_error_lookups_never_crash(v):
    buf = bytes.fromhex(v["lite3_hex"])
    for path in [(), ("a",), ("s",), (0,), ("meta", "tags")]:
        try:
            lite3.lookup(buf, path)
            lite3.lookup_json(buf, path)
            lite3.get_tags(buf)
        except PlasmiteError:
            pass


MESSAGES = [v for v in VECTORS if v["name"].startswith("plasmite_message_")]


@pytest.mark.parametrize("v", [pytest.param(v, id=v["name"]) for v in MESSAGES])
def test_message_vectors(v):
    buf = bytes.fromhex(v["lite3_hex"])
    src = json.loads(v["json"])
    tags, data = src["meta"]["tags"], src["data"]
    assert lite3.get_tags(buf) == tags
    # upstream's recipe (serde_json sorts data keys) gives the vector's bytes,
    # whatever order the caller's dict has
    assert lite3.encode_message(tags, data) == buf
    shuffled = list(data.items())
    random.Random(7).shuffle(shuffled)
    assert lite3.encode_message(tags, dict(reversed(shuffled))) == buf
    assert lite3.encode_message_json(tags, json.dumps(data).encode()) == buf
    got_tags, data_json = lite3.parse_message(buf)
    assert got_tags == tags
    assert json.loads(data_json) == data
    assert lite3.lookup(buf, ("data",)) == data


def test_parse_message_rejects_non_messages():
    for doc in ([], {"meta": {"tags": []}}, {"data": {}}, {"meta": {"tags": [1]}, "data": {}},
                {"meta": {"tags": "a"}, "data": {}}, {"meta": {"tags": []}, "data": [1]},
                {"meta": [], "data": {}}):
        with pytest.raises(UsageError):
            lite3.parse_message(lite3.encode(doc))
    with pytest.raises(UsageError):
        lite3.parse_message(b"\x06" + bytes(20))
    with pytest.raises(UsageError):
        lite3.encode_message(["a"], [1, 2])
    with pytest.raises(UsageError):
        lite3.encode_message("a", {})
    with pytest.raises(UsageError):
        lite3.encode_message([1], {})
