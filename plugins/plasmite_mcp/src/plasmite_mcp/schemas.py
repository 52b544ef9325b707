"""The tool catalogue: names, descriptions, JSON Schemas and annotations.

Names, arguments and result shapes are upstream Plasmite's, so an agent
prompt written for one server works with the other. Every output schema is
``oneOf`` a success object and the structured error every tool failure
carries (``tool``, ``error_kind``), so a client that validates
``structuredContent`` accepts both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

DEFAULT_POOL_SIZE_BYTES = 1024 * 1024
DEFAULT_READ_COUNT = 20
MAX_READ_COUNT = 200
DEFAULT_WAIT_TIMEOUT_MS = 10_000
MAX_WAIT_TIMEOUT_MS = 60_000

ERROR_KINDS = [
    "Internal", "Usage", "NotFound", "AlreadyExists", "Busy",
    "Permission", "Corrupt", "Io", "RetentionGap",
]


class Tool(NamedTuple):
    name: str
    description: str
    input_schema: dict
    output_schema: dict
    annotations: dict
    writes: bool  # needs write access (else read access)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": self.annotations,
        }


def _annotations(read_only: bool, destructive: bool, idempotent: bool) -> dict:
    return {
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": False,
    }


_ERROR_RESULT = {
    "type": "object",
    "description": "A failed call: the stable error kind, with message and hint when known.",
    "properties": {
        "tool": {"type": "string"},
        "error_kind": {"type": "string", "enum": ERROR_KINDS},
        "message": {"type": "string"},
        "hint": {"type": "string"},
        "field": {"type": "string"},
        "detail": {"type": "string"},
        "seq": {"type": "integer"},
        "path": {"type": "string"},
    },
    "required": ["tool", "error_kind"],
}

MESSAGE = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "minimum": 0},
        "time": {"type": "string", "description": "RFC 3339, nanoseconds, UTC"},
        "meta": {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["tags"],
            "additionalProperties": False,
        },
        "data": {},
    },
    "required": ["seq", "time", "meta", "data"],
    "additionalProperties": False,
}

POOL_INFO = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "path": {"type": "string"},
        "file_size": {"type": "integer", "minimum": 0},
        "bounds": {
            "type": "object",
            "description": "Oldest and newest retained seq; empty for an empty pool.",
            "properties": {
                "oldest": {"type": "integer", "minimum": 0},
                "newest": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": False,
        },
        "metrics": {"type": "object"},
    },
    "required": ["name", "path", "file_size", "bounds"],
    "additionalProperties": True,
}

_SEQ_OR_NULL = {"type": ["integer", "null"], "minimum": 0}


def _output(success: dict) -> dict:
    return {"type": "object", "oneOf": [success, _ERROR_RESULT]}


def _one_property(name: str, schema: dict) -> dict:
    return _output(
        {"type": "object", "properties": {name: schema}, "required": [name], "additionalProperties": False}
    )


def _batch_output(wait: bool) -> dict:
    props = {
        "messages": {"type": "array", "items": MESSAGE, "description": "Matching messages, oldest first."},
        "next_after_seq": dict(_SEQ_OR_NULL, description="Pass as after_seq to continue after this batch."),
        "last_returned_seq": dict(_SEQ_OR_NULL, description="Seq of the last message returned, if any."),
        "oldest_available_seq": dict(_SEQ_OR_NULL, description="Oldest retained seq (null: empty pool)."),
        "newest_available_seq": dict(_SEQ_OR_NULL, description="Newest retained seq (null: empty pool)."),
        "fell_behind": {
            "type": "boolean",
            "description": "The ring overwrote messages after after_seq; reading went on from the oldest kept.",
        },
    }
    if wait:
        props["timed_out"] = {"type": "boolean", "description": "No matching message arrived in time."}
    return _output(
        {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    )


def _inputs(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_POOL = {"type": "string", "description": "Pool name (letters, digits, '-', '_', '.')"}
_TAGS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Only messages carrying every one of these tags (trimmed; empty tags are refused)",
}
_COUNT = {
    "type": "integer", "minimum": 1, "maximum": MAX_READ_COUNT,
    "description": f"At most this many messages (default {DEFAULT_READ_COUNT}, max {MAX_READ_COUNT})",
}

TOOLS: list[Tool] = [
    Tool(
        "plasmite_pool_list",
        "List the pools on this server, with their size and retained range. Call it first when the "
        "task does not name a pool.",
        _inputs({}, []),
        _one_property("pools", {"type": "array", "items": POOL_INFO}),
        _annotations(True, False, True),
        False,
    ),
    Tool(
        "plasmite_pool_create",
        "Create a pool: a fixed-size ring that drops its oldest messages once full. An existing pool "
        "is never touched: the call fails with AlreadyExists and the pool can be used as it is.",
        _inputs(
            {
                "name": _POOL,
                "size": {"type": "integer", "minimum": 1,
                         "description": f"Capacity in bytes (default {DEFAULT_POOL_SIZE_BYTES})"},
            },
            ["name"],
        ),
        _one_property("pool", POOL_INFO),
        _annotations(False, False, True),
        True,
    ),
    Tool(
        "plasmite_pool_info",
        "Describe one pool: capacity, retained seq range, message count and usage.",
        _inputs({"pool": _POOL}, ["pool"]),
        _one_property("pool", POOL_INFO),
        _annotations(True, False, True),
        False,
    ),
    Tool(
        "plasmite_pool_delete",
        "Delete a pool file and every message in it. This cannot be undone.",
        _inputs({"pool": _POOL}, ["pool"]),
        _one_property(
            "deleted",
            {"type": "object", "properties": {"pool": {"type": "string"}}, "required": ["pool"],
             "additionalProperties": False},
        ),
        _annotations(False, True, True),
        True,
    ),
    Tool(
        "plasmite_feed",
        "Append one JSON object to a pool as a new message (messages are never edited or replaced). "
        "The pool must exist unless create is true. Calling again after an unclear failure may store "
        "the message twice.",
        _inputs(
            {
                "pool": _POOL,
                "data": {"type": "object", "description": "The message: a JSON object"},
                "tags": dict(_TAGS, description="Labels readers can filter on (trimmed; empty tags are refused)"),
                "create": {"type": "boolean", "description": "Create the pool (default size) when missing"},
            },
            ["pool", "data"],
        ),
        _one_property("message", MESSAGE),
        _annotations(False, False, False),
        True,
    ),
    Tool(
        "plasmite_fetch",
        "Get exactly one message by its seq (seqs come from read, wait and feed results).",
        _inputs({"pool": _POOL, "seq": {"type": "integer", "minimum": 0, "description": "The message's seq"}},
                ["pool", "seq"]),
        _one_property("message", MESSAGE),
        _annotations(True, False, True),
        False,
    ),
    Tool(
        "plasmite_read",
        "Read retained messages without waiting: by default the newest 20 (oldest first). since "
        "limits them to a time window; after_seq continues from an earlier result's next_after_seq.",
        _inputs(
            {
                "pool": _POOL,
                "count": _COUNT,
                "after_seq": {"type": "integer", "minimum": 0,
                              "description": "Only messages after this seq, oldest first"},
                "since": {"type": "string",
                          "description": "Only messages this recent: 30s, 5m, 2h, 1d or an RFC 3339 time"},
                "tags": _TAGS,
            },
            ["pool"],
        ),
        _batch_output(False),
        _annotations(True, False, True),
        False,
    ),
    Tool(
        "plasmite_wait",
        "Block until new matching messages arrive or timeout_ms passes, then return them. Without "
        "after_seq only messages appended after the call count; in a loop, pass each result's "
        "next_after_seq as after_seq so nothing appended between calls is missed.",
        _inputs(
            {
                "pool": _POOL,
                "after_seq": {"type": "integer", "minimum": 0,
                              "description": "Return messages after this seq (omit: only future messages)"},
                "count": _COUNT,
                "timeout_ms": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_TIMEOUT_MS,
                               "description": f"How long to wait (default {DEFAULT_WAIT_TIMEOUT_MS}, "
                                              f"max {MAX_WAIT_TIMEOUT_MS})"},
                "tags": _TAGS,
            },
            ["pool"],
        ),
        _batch_output(True),
        _annotations(True, False, True),
        False,
    ),
]

BY_NAME = {tool.name: tool for tool in TOOLS}

INSTRUCTIONS = (
    "Plasmite keeps JSON messages in pools. A pool is a named, persistent file of fixed size holding "
    "a ring: once it is full, each new message overwrites the oldest one, so a pool is a recent "
    "history, not an archive. plasmite_feed only ever appends a message; nothing is updated or "
    "deleted one message at a time. Each message has data (a JSON object), optional tags, a time and a "
    "seq that grows by one per message; ordinary use can ignore seqs. "
    "Only the tools this server's access mode allows are listed. If you do not know which pool to "
    "use and plasmite_pool_list is listed, call it first; otherwise use the pool name your task "
    "gives (plasmite_feed with create true makes a missing pool). Create or delete pools only when "
    "the task asks for it. "
    "plasmite_read returns messages already in the pool at once; plasmite_wait blocks until new "
    "ones arrive or its timeout passes, so use it instead of calling read in a loop. To follow a "
    "pool, pass each result's next_after_seq as after_seq to the next call; fell_behind says "
    "messages were overwritten before you read them. Tag filters match messages carrying all the "
    "given tags. plasmite_fetch is for one known seq. "
    "A failed call returns isError with error_kind (Usage, NotFound, AlreadyExists, Busy, "
    "Permission, ...) and a hint. plasmite_feed is not idempotent: after an unclear failure, retry "
    "only if the message carries its own identifier so a duplicate can be recognised."
)
