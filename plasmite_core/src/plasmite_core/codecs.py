"""Payload codecs: the built-in ``json`` codec (the contract is ``protocols.Codec``).

A pool records its codec name in the header and every reader decodes with it.
``json`` lives in the core (rather than in plasmite-codecs) so that the core
installed alone is a complete, working store; further codecs (msgpack, lite3,
third-party) arrive through the ``register_codecs`` hook.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import UsageError
from .protocols import Codec  # noqa: F401  (the codec contract, re-exported)

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def encode_json(value: Any) -> bytes:
    """Compact JSON for a Python value, with a Usage error for the unencodable."""
    try:
        return _enc.encode(value)
    except RecursionError:
        raise UsageError("data is nested too deeply", hint="flatten the value (at most a few hundred levels of nesting)") from None
    except (TypeError, msgspec.EncodeError, OverflowError, ValueError) as exc:
        raise UsageError(
            f"data is not JSON-serializable: {exc}",
            hint="pass dicts, lists, strings, numbers, booleans or None",
        ) from exc


_TOO_DEEP = "invalid JSON: nested too deeply"


def canonical_json(text: bytes | str) -> bytes:
    """Validate JSON text and return its compact form (Usage error if invalid)."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    try:
        return _enc.encode(_dec.decode(text))
    except msgspec.DecodeError as exc:
        raise UsageError(f"invalid JSON: {exc}", hint="pass one valid JSON value, e.g. '{\"msg\":\"hi\"}'") from exc
    except RecursionError:
        raise UsageError(_TOO_DEEP, hint="flatten the value (at most a few hundred levels of nesting)") from None
    except (msgspec.EncodeError, UnicodeError, OverflowError) as exc:
        raise UsageError(f"invalid JSON: {exc}", hint="pass valid UTF-8 JSON text") from exc


class JsonCodec:
    """Payload = compact JSON text, so JSON output is a byte copy."""

    name = "json"
    is_json = True

    def encode(self, value: Any) -> bytes:
        return encode_json(value)

    def decode(self, payload: bytes) -> Any:
        return _dec.decode(payload)

    def to_json(self, payload: bytes) -> bytes:
        return bytes(payload)

    def from_json(self, text: bytes) -> bytes:
        return canonical_json(text)


JSON = JsonCodec()
