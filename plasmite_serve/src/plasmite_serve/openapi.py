"""The OpenAPI 3.1 description of the JSON endpoints, served at /openapi.json.

Written by hand from the protocol rather than generated, so that it documents
exactly the wire shapes of remote protocol v0 (the tail stream is JSON Lines,
which OpenAPI can only describe as text).
"""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict) -> dict:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_ERRORS = {code: _response(name) for code, name in (
    ("400", "Usage"), ("401", "Unauthorized"), ("403", "Forbidden"), ("404", "NotFound"),
    ("415", "UnsupportedMediaType"), ("423", "Busy"), ("500", "Internal"),
)}


def _errors(*codes: str) -> dict:
    return {code: _ERRORS[code] for code in codes}


POOL_PARAM = {
    "name": "pool",
    "in": "path",
    "required": True,
    "description": "Pool name (letters, digits, '-', '_', '.'); never a path.",
    "schema": _ref("PoolName"),
}

# The server's validate_pool_name, as a schema (no "..", no separators).
POOL_NAME = {"type": "string", "pattern": "^(?!.*\\.\\.)[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,127}$"}
TAG = {"type": "string", "minLength": 1}


def _connection_text(limits: dict[str, int] | None) -> str:
    if not limits:
        return ""
    return (
        f" Connections (when run by `pls serve`): a keep-alive connection idle for {limits['idle_timeout_ms']} ms is closed; a request head "
        f"must arrive within {limits['head_timeout_ms']} ms and its body within {limits['body_timeout_ms']} ms "
        f"(else 408 and the connection is closed); beyond {limits['max_connections']} connections the oldest one "
        "still waiting for a request is closed, and when none is, new connections are answered 503. An append "
        f"waits at most {limits['lock_timeout_ms']} ms for a pool's writer lock held by another process "
        "(then 423 Busy)."
    )


def openapi_document(max_tail_timeout_ms: int | None = None, max_pool_bytes: int | None = None,
                     connection_limits: dict[str, int] | None = None) -> dict[str, Any]:
    """The document; given the server's limits, it states them as schema bounds and in the description."""
    timeout_schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    if max_tail_timeout_ms is not None:
        timeout_schema["maximum"] = max_tail_timeout_ms
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plasmite remote protocol",
            "version": "0",
            "description": (
                "HTTP access to Plasmite pools. Every response carries `plasmite-version: 0`. "
                "Errors use the envelope `{\"error\": {\"kind\", \"message\", \"hint\"?, \"path\"?, "
                "\"seq\"?, \"offset\"?}}`. When the server has a token, send `Authorization: Bearer <token>`. "
                "Request bodies need their declared type: `Content-Type: application/json` for the JSON "
                "endpoints (415 otherwise). The `Host` header must name the server (a loopback name or IP, the "
                "bound address, or an operator-allowed host) and a state-changing request with an `Origin` must "
                "come from the server's own origin or an allowed CORS origin (403 otherwise)."
                + _connection_text(connection_limits)
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "PoolName": POOL_NAME,
                "Message": {
                    "type": "object",
                    "required": ["seq", "time", "meta", "data"],
                    "properties": {
                        "seq": {"type": "integer", "minimum": 1},
                        "time": {"type": "string", "description": "RFC 3339 UTC, nanoseconds"},
                        "meta": {
                            "type": "object",
                            "required": ["tags"],
                            "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                        },
                        "data": {"type": "object", "description": "The message data: a JSON object"},
                    },
                },
                "PoolInfo": {
                    "type": "object",
                    "required": ["name", "path", "file_size", "ring_offset", "ring_size", "bounds"],
                    "properties": {
                        "name": {"type": "string"},
                        "path": {"type": "string"},
                        "file_size": {"type": "integer"},
                        "index_offset": {"type": "integer"},
                        "index_capacity": {"type": "integer"},
                        "index_size_bytes": {"type": "integer"},
                        "ring_offset": {"type": "integer"},
                        "ring_size": {"type": "integer"},
                        "bounds": {
                            "type": "object",
                            "properties": {"oldest": {"type": "integer"}, "newest": {"type": "integer"}},
                        },
                        "metrics": {"type": "object"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["kind", "message"],
                            "properties": {
                                "kind": {
                                    "type": "string",
                                    "enum": [
                                        "Internal", "Usage", "NotFound", "AlreadyExists", "Busy",
                                        "Permission", "Corrupt", "Io", "RetentionGap",
                                    ],
                                },
                                "message": {"type": "string"},
                                "hint": {"type": "string"},
                                "path": {"type": "string"},
                                "seq": {"type": "integer"},
                                "offset": {"type": "integer"},
                            },
                        }
                    },
                },
            },
            "responses": {
                name: _json(_ref("Error"), text)
                for name, text in (
                    ("Usage", "Usage: malformed input"),
                    ("Unauthorized", "Permission: missing or invalid bearer token"),
                    ("Forbidden", "Permission: forbidden by the server's access mode, a Host that does not name the "
                                  "server, or a state change from a foreign Origin"),
                    ("NotFound", "NotFound"),
                    ("AlreadyExists", "AlreadyExists"),
                    ("TooLarge", "Usage: request body larger than the server's limit"),
                    ("UnsupportedMediaType", "Usage: the body's Content-Type is not the endpoint's"),
                    ("Busy", "Busy: a concurrency limit was reached, or another process held the pool's "
                             "writer lock too long; retry later"),
                    ("Gone", "RetentionGap"),
                    ("Internal", "Internal, Corrupt or Io"),
                )
            },
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/v0/pools": {
                "get": {
                    "summary": "List pools",
                    "responses": {
                        "200": _json(
                            {"type": "object", "properties": {"pools": {"type": "array", "items": _ref("PoolInfo")}}},
                            "Pools, sorted by name",
                        ),
                        **_errors("401", "403", "423", "500"),
                    },
                },
                "post": {
                    "summary": "Create a pool",
                    "requestBody": _body({
                        "type": "object",
                        "required": ["pool"],
                        "properties": {
                            "pool": _ref("PoolName"),
                            "size_bytes": {"type": "integer", "minimum": 65536, "maximum": max_pool_bytes or 1099511627776, "default": 1048576},
                        },
                    }),
                    "responses": {
                        "200": _json({"type": "object", "properties": {"pool": _ref("PoolInfo")}}, "Created"),
                        "409": _response("AlreadyExists"),
                        "413": _response("TooLarge"),
                        **_errors("400", "401", "403", "415", "423", "500"),
                    },
                },
            },
            "/v0/pools/open": {
                "post": {
                    "summary": "Open (check) an existing pool",
                    "requestBody": _body({"type": "object", "required": ["pool"], "properties": {"pool": _ref("PoolName")}}),
                    "responses": {
                        "200": _json({"type": "object", "properties": {"pool": _ref("PoolInfo")}}, "Pool info"),
                        **_errors("400", "401", "403", "404", "415", "423", "500"),
                    },
                }
            },
            "/v0/pools/{pool}/info": {
                "parameters": [POOL_PARAM],
                "get": {
                    "summary": "Pool info",
                    "responses": {
                        "200": _json({"type": "object", "properties": {"pool": _ref("PoolInfo")}}, "Pool info"),
                        **_errors("400", "401", "403", "404", "423", "500"),
                    },
                },
            },
            "/v0/pools/{pool}": {
                "parameters": [POOL_PARAM],
                "delete": {
                    "summary": "Delete a pool",
                    "responses": {
                        "200": _json({"type": "object", "properties": {"ok": {"const": True}}}, "Deleted"),
                        **_errors("400", "401", "403", "404", "423", "500"),
                    },
                },
            },
            "/v0/pools/{pool}/append": {
                "parameters": [POOL_PARAM],
                "post": {
                    "summary": "Append one message",
                    "requestBody": _body({
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "data": {"type": "object", "description": "The message data: a JSON object"},
                            "tags": {"type": ["array", "null"], "items": TAG},
                            "durability": {
                                "type": ["string", "null"],
                                "enum": ["fast", "flush", None],
                                "default": "fast",
                                "description": "null means the default (fast)",
                            },
                        },
                    }),
                    "responses": {
                        "200": _json({"type": "object", "properties": {"message": _ref("Message")}}, "Appended"),
                        "413": _response("TooLarge"),
                        **_errors("400", "401", "403", "404", "415", "423", "500"),
                    },
                },
            },
            "/v0/pools/{pool}/messages/{seq}": {
                "parameters": [
                    POOL_PARAM,
                    {"name": "seq", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                ],
                "get": {
                    "summary": "Get one message by seq",
                    "responses": {
                        "200": _json({"type": "object", "properties": {"message": _ref("Message")}}, "The message"),
                        **_errors("400", "401", "403", "404", "423", "500"),
                    },
                },
            },
            "/v0/pools/{pool}/tail": {
                "parameters": [
                    POOL_PARAM,
                    {"name": "since_seq", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "First seq to deliver (inclusive); default: the oldest retained"},
                    {"name": "max", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "End after this many messages"},
                    {"name": "timeout_ms", "in": "query", "schema": timeout_schema,
                     "description": (
                         "End the stream after this long (default: the server's --max-tail-timeout-ms; "
                         "a larger value is refused with 400 Usage)"
                     )},
                    {"name": "tag", "in": "query", "schema": {"type": "array", "items": TAG},
                     "style": "form", "explode": True, "description": "Repeatable; every tag must be present"},
                    {"name": "gap_policy", "in": "query", "schema": {"type": "string", "enum": ["continue", "error"]}},
                    {"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "Extension: without since_seq, start with the N newest messages (0: only new ones)"},
                ],
                "get": {
                    "summary": "Stream messages as JSON Lines",
                    "description": (
                        "One message envelope per line, ascending seq. A failure after the stream started "
                        "ends it with one error-envelope line. Resume with since_seq = last seq + 1."
                    ),
                    "responses": {
                        "200": {
                            "description": "JSON Lines stream",
                            "content": {"application/jsonl": {"schema": {"type": "string"}}},
                        },
                        "410": _response("Gone"),
                        **_errors("400", "401", "403", "404", "423", "500"),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness (no auth)",
                    "security": [{}],
                    "responses": {"200": _json({"type": "object", "properties": {"ok": {"const": True}}}, "Alive")},
                }
            },
        },
    }
