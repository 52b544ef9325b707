"""HTTP primitives shared by the routes: errors, responses, request bodies and parameters.

Bare ASGI messages, written by hand because the hot paths (append, get) are a
few microseconds of work and a framework's request objects would cost more.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec

from plasmite_core.errors import InternalError, PlasmiteError, UsageError, from_os_error
from plasmite_core.refs import validate_pool_name

PROTOCOL_VERSION = b"0"
json_encode = msgspec.json.encode


class HttpError(Exception):
    """A PlasmiteError with the HTTP status (and extra headers) it must be answered with."""

    def __init__(self, error: PlasmiteError, status: int | None = None, headers: list | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status or error.kind.http_status
        self.headers = headers or []


def error_envelope(error: PlasmiteError) -> bytes:
    return json_encode({"error": error.to_dict()})


def as_plasmite_error(exc: BaseException, path: str | None = None) -> PlasmiteError:
    if isinstance(exc, PlasmiteError):
        return exc
    if isinstance(exc, OSError):
        return from_os_error(exc, path)
    return InternalError(f"internal error: {type(exc).__name__}: {exc}", hint="this is a bug; please report it")


# ----------------------------------------------------------------- responses


async def send_json(send, body: bytes, status: int, extra: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"plasmite-version", PROTOCOL_VERSION),
            ]
            + extra,
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send, error: PlasmiteError, status: int, extra: list) -> None:
    try:
        await send_json(send, error_envelope(error), status, extra)
    except (OSError, RuntimeError):
        pass  # response already started or client gone


async def send_chunk(send, body: bytes, *, more: bool) -> bool:
    try:
        await send({"type": "http.response.body", "body": body, "more_body": more})
        return True
    except (OSError, RuntimeError):
        return False


# ------------------------------------------------------------------ requests


def header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def read_body(scope, receive, limit: int) -> bytes:
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise UsageError("invalid Content-Length header") from None
        if size > limit:
            raise HttpError(too_large(limit), 413)
    chunks = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(UsageError("client disconnected"), 400)
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise HttpError(too_large(limit), 413)
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def too_large(limit: int) -> PlasmiteError:
    return UsageError(
        f"request body exceeds the server limit of {limit} bytes",
        hint="send a smaller message; the operator sets the limit with --max-body-bytes",
    )


def decode_body(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    if not body.strip():
        raise UsageError("request body is required", hint="send a JSON object, e.g. {\"pool\": \"demo\"}")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise UsageError(f"invalid request body: {exc}", hint="see /openapi.json for the request shape") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"malformed JSON body: {exc}", hint="send a valid JSON object") from None
    except RecursionError:
        raise UsageError("request body is nested too deeply", hint="flatten the JSON document") from None
    except UnicodeError:
        raise UsageError("request body is not valid UTF-8", hint="send UTF-8 encoded JSON") from None


def pool_name(raw: str) -> str:
    if "/" in raw or "\\" in raw:
        raise UsageError(
            f"pool name must not contain path separators: {raw!r}",
            hint="remote pool refs are names only; path-based refs are local-only",
        )
    return validate_pool_name(raw)


def parse_uint(name: str, value: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise UsageError(f"invalid {name}: {value!r}", hint=f"{name} must be a non-negative integer") from None
    if number < 0 or not value.strip().isdigit():
        raise UsageError(f"invalid {name}: {value!r}", hint=f"{name} must be a non-negative integer")
    return number


def segments(scope) -> list[str]:
    """Path segments after the mount point, each percent-decoded on its own.

    Splitting the raw path first keeps ``a%2Fb`` one segment, so a pool name
    with an encoded slash is refused as a name instead of routed elsewhere.
    """
    raw = scope.get("raw_path")
    if raw:
        text = raw.decode("latin-1").split("?", 1)[0]
    else:
        text = scope.get("path", "/")
    if "%" in text:
        parts = [unquote(p) for p in text.split("/") if p != ""]
    else:
        parts = [p for p in text.split("/") if p != ""]
    root = scope.get("root_path") or ""
    if root:
        root_parts = [p for p in root.split("/") if p]
        if parts[: len(root_parts)] == root_parts:
            parts = parts[len(root_parts):]
    return parts
