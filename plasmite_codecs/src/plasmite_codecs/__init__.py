"""Plasmite payload codecs (msgpack, Lite3), shipped as a plugin distribution.

The core never imports this package; it finds the codecs through the
``plasmite`` entry point ``codecs = "plasmite_codecs.plugin"``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "get_codec"]


def get_codec(name: str):
    """The codec object for ``name`` ("lite3" or "msgpack") without the plugin manager."""
    if name == "lite3":
        from .lite3 import Lite3Codec

        return Lite3Codec()
    if name == "msgpack":
        from .msgpack_codec import MsgpackCodec

        return MsgpackCodec()
    from plasmite_core.errors import ErrorKind, UsageError

    raise UsageError(ErrorKind.USAGE, f"unknown codec {name!r}", hint="plasmite-codecs provides: lite3, msgpack")
