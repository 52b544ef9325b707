"""The v0 contract points of the Python API that upstream's binding tests pin:
validation errors are built-in types too, message data is a JSON object, the
kind-to-class map and the tag helper exist under upstream's names."""

from __future__ import annotations

import pytest

import plasmite
from plasmite import Durability, ErrorKind, Message, UsageError


def test_usage_errors_are_value_errors_and_str_payload_is_type_error(client):
    pool = client.create_pool("v", 64 * 1024)
    with pytest.raises(ValueError) as empty:
        pool.append_json(b"")
    assert isinstance(empty.value, UsageError) and empty.value.kind is ErrorKind.USAGE
    with pytest.raises(ValueError):
        pool.get_json(-1)
    with pytest.raises(TypeError):
        pool.append_json("{}")
    # Both raise before anything is stored.
    assert pool.bounds() == (None, None)
    assert pool.append_json(bytearray(b'{"ok":1}'))  # bytes-like stays accepted


@pytest.mark.parametrize("value, kind", [([1, 2, 3], "an array"), (42, "a number"), ("text", "a string"),
                                         (None, "null"), (True, "a boolean")])
def test_message_data_must_be_an_object(client, value, kind):
    pool = client.create_pool("obj", 64 * 1024)
    import json

    for call in (lambda: pool.append(value), lambda: pool.append_json(json.dumps(value).encode()),
                 lambda: pool.append_many([{"ok": 1}, value]), lambda: pool.append_many_tagged([(value, ["t"])])):
        with pytest.raises(UsageError) as err:
            call()
        assert f"must be a JSON object, got {kind}" in err.value.message
        assert err.value.hint
    assert pool.bounds() == (None, None)  # a rejected batch stores nothing


def test_objects_of_every_kind_are_accepted(client):
    import msgspec

    class Point(msgspec.Struct):
        x: int

    pool = client.create_pool("ok", 64 * 1024)
    assert pool.append({}).data == {}
    assert pool.append(Point(1)).seq == 2
    assert pool.get(2).data == {"x": 1}
    assert len(pool.append_many([{"a": 1}, {"b": 2}])) == 2


def test_error_kind_to_class_and_tag_helper(client):
    for kind in ErrorKind:
        cls = plasmite._ERROR_KIND_TO_CLASS[kind]
        assert issubclass(cls, plasmite.PlasmiteError) and cls(kind, "x").kind is kind
    assert plasmite._ERROR_KIND_TO_CLASS[ErrorKind.NOT_FOUND] is plasmite.NotFoundError
    pool = client.create_pool("tags", 64 * 1024)
    m = pool.append({"x": 1}, ["a", "b"], Durability.FAST)
    assert isinstance(m, Message)
    assert plasmite._message_has_tags(m, ["a"]) and plasmite._message_has_tags(m, ["b", "a"])
    assert not plasmite._message_has_tags(m, ["a", "c"])
    assert plasmite._message_has_tags(m, [])
