"""Entry-point module: registers the ``msgpack`` and ``lite3`` codecs with Plasmite."""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("plasmite")


@hookimpl
def register_codecs(register):
    from .lite3 import Lite3Codec
    from .msgpack_codec import MsgpackCodec

    register("msgpack", MsgpackCodec())
    register("lite3", Lite3Codec())
