"""Lite3 paths of the Python API: the same bytes as upstream's message vectors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("plasmite_codecs.lite3")

from plasmite import Lite3Frame, UsageError  # noqa: E402
from plasmite_codecs import lite3  # noqa: E402


def _message_vectors(shared_dir):
    path = shared_dir / "vectors" / "lite3" / "vectors.jsonl"
    out = []
    for line in path.read_text().splitlines():
        v = json.loads(line)
        if v.get("name", "").startswith("plasmite_message") and v.get("lite3_hex"):
            out.append(v)
    return out


@pytest.mark.parametrize("codec", ["json", "lite3", "msgpack"])
def test_lite3_roundtrip_any_pool_codec(client, codec):
    pool = client.create_pool(f"l3{codec}", codec=codec)
    doc = lite3.from_json(b'{"meta":{"tags":["a","b"]},"data":{"x":1,"y":[true,null,"s"]}}')
    seq = pool.append_lite3(doc)
    assert seq == 1
    frame = pool.get_lite3(1)
    assert isinstance(frame, Lite3Frame) and frame.seq == 1 and frame.flags == 0
    assert frame.payload == doc  # byte-identical round trip
    m = pool.get(1)
    assert m.tags == ["a", "b"] and m.data == {"x": 1, "y": [True, None, "s"]}
    pool.append({"z": 2}, ["c"])
    with pool.open_lite3_stream(since_seq=1, max_messages=2) as s:
        frames = list(s)
    assert [f.seq for f in frames] == [1, 2]
    assert json.loads(lite3.to_json(frames[1].payload)) == {"meta": {"tags": ["c"]}, "data": {"z": 2}}


def test_lite3_matches_upstream_message_vectors(client, shared_dir):
    vectors = _message_vectors(shared_dir)
    if not vectors:
        pytest.skip("no plasmite_message vectors")
    pool = client.create_pool("vec")
    for v in vectors:
        want = bytes.fromhex(v["lite3_hex"])
        seq = pool.append_lite3(want)
        assert pool.get_lite3(seq).payload == want, v["name"]


def test_bad_lite3_message_is_usage(client):
    pool = client.create_pool("bad")
    with pytest.raises(UsageError):
        pool.append_lite3(b"")
    with pytest.raises(UsageError):
        pool.append_lite3(lite3.from_json(b'{"no":"data"}'))
    with pytest.raises(UsageError):
        pool.append_lite3(lite3.from_json(b'{"meta":{"tags":[1]},"data":{}}'))
    with pytest.raises(UsageError):
        pool.append_lite3(lite3.from_json(b'{"meta":{"tags":[]},"data":1}'))
    with pytest.raises(UsageError):
        pool.append_lite3(lite3.from_json(b'{"data":{}}'))
    with pytest.raises(Exception) as e:
        pool.append_lite3(b"\x06garbage")
    assert e.value.kind.label in ("Corrupt", "Usage")
    assert pool.bounds() == (None, None)
