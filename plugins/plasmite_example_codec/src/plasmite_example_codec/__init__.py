"""Example third-party plugin: the ``zjson`` codec (zlib-compressed JSON).

Everything a plugin needs: a ``hookimpl`` from pluggy's ``plasmite`` project and
an entry point in the ``plasmite`` group naming this module.
"""

from __future__ import annotations

import json
import zlib

import pluggy

from plasmite_core.errors import CorruptError, UsageError

hookimpl = pluggy.HookimplMarker("plasmite")


class ZJsonCodec:
    name = "zjson"
    is_json = False

    def encode(self, value):
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"data is not JSON-serializable: {exc}") from exc
        return zlib.compress(text.encode("utf-8"), 6)

    def decode(self, payload):
        return json.loads(self.to_json(payload))

    def to_json(self, payload):
        try:
            return zlib.decompress(bytes(payload))
        except zlib.error as exc:
            raise CorruptError(f"zjson payload does not decompress: {exc}") from exc

    def from_json(self, text):
        return zlib.compress(bytes(text), 6)


@hookimpl
def register_codecs(register):
    register("zjson", ZJsonCodec())
