"""The Lite3 byte endpoints: append a Lite3 message document, get one as raw bytes.

A message's Lite3 form is the document of ``{"meta":{"tags"},"data"}``,
whatever codec the pool stores, built with the core's own conversion (the
bytes of ``Pool.get_lite3``). The Lite3 tail is in ``tail.py``.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import parse_qsl

from plasmite_core.client import Durability
from plasmite_core.durability import parse_durability
from plasmite_core.errors import NotFoundError, UsageError

from .handlers import append_and_answer, read_by_seq
from .wire import PROTOCOL_VERSION, HttpError

LITE3_TYPE = "application/x-plasmite-lite3"


def lite3_module():
    try:
        from plasmite_codecs import lite3
    except ImportError:
        raise HttpError(
            NotFoundError(
                "Lite3 byte endpoints need plasmite-codecs, which is not installed on this server",
                hint="pip install plasmite-codecs on the server, or use the JSON endpoints",
            ),
            404,
        ) from None
    return lite3


def lite3_encoder() -> Callable:
    """message -> Lite3Frame, the core's own conversion (the bytes of Pool.get_lite3)."""
    codec = lite3_module().Lite3Codec()
    from plasmite_core.lite3_frames import frame_of

    return lambda message: frame_of(message, codec)


async def append_lite3(app, req) -> None:
    """The Content-Type was checked (415) before the body was read."""
    if not req.body:
        raise UsageError("lite3 payload is required", hint='send the Lite3 document of {"meta":{"tags":[...]},"data":{...}}')
    mode = Durability.FAST
    for key, value in parse_qsl(req.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if key == "durability":
            mode = parse_durability(value)
    tags, data = lite3_module().parse_message(req.body)  # Usage error when malformed
    await append_and_answer(app, req, req.params["pool"], data, tags, mode)


async def get_lite3(app, req) -> None:
    encoder = lite3_encoder()
    message = await read_by_seq(app, req, "get")
    payload = encoder(message).payload
    await req.send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", LITE3_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"plasmite-seq", str(message.seq).encode()),
                (b"plasmite-time-ns", str(message.time_ns).encode()),
                (b"plasmite-version", PROTOCOL_VERSION),
            ]
            + req.cors,
        }
    )
    await req.send({"type": "http.response.body", "body": payload})
