"""Tails: one streaming loop, one framer per format (JSON Lines, SSE, Lite3 frames).

The loop takes the messages that are ready from the core's ``Stream``
without waiting, on the event loop, and writes them in batches; when none are,
it awaits ``Stream.anext()``, which sleeps on one shared waiter thread per
pool, so open tails cost no thread each. It ends at the query's ``max``, its
deadline, a client disconnect (noticed at once) or server shutdown.
Back-pressure is natural: the next batch is read after the previous write was
accepted. A framer turns a batch into bytes and says how a failure after the
stream started is reported (an error line, an SSE error event, or nothing for
Lite3, whose stream has no error frame).
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any, Callable
from urllib.parse import parse_qsl

from plasmite_core.envelope import seq_of
from plasmite_core.errors import BusyError, PlasmiteError, RetentionGapError, UsageError

from .lite3_routes import lite3_encoder
from .wire import PROTOCOL_VERSION, HttpError, error_envelope, parse_uint, send_chunk

TAIL_RECHECK_S = 1.0  # an idle tail rechecks its deadline and server shutdown this often
TAIL_BATCH_MESSAGES = 4096
TAIL_BATCH_BYTES = 256 * 1024
SSE_KEEPALIVE_S = 15.0
# A Lite3 frame costs ~30 us to build in pure Python, on the event loop: a
# batch of 256 (~120 KiB written at once) holds the loop for ~8 ms at most.
LITE3_BATCH_MESSAGES = 256
# envelopes per poll_json call while draining (bounds the overshoot of 256 KiB)
TAIL_POLL_MESSAGES = 256
_frame_head = struct.Struct(">QQI").pack
_STREAMING = [(b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]


class TailQuery:
    __slots__ = ("since_seq", "max", "timeout_ms", "tags", "error_on_gap", "last")

    def __init__(self) -> None:
        self.since_seq: int | None = None
        self.max: int | None = None
        self.timeout_ms: int | None = None
        self.tags: list[str] = []
        self.error_on_gap = False
        self.last: int | None = None


def tail_query(scope, max_timeout_ms: int, sse: bool) -> TailQuery:
    q = TailQuery()
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if key == "since_seq":
            q.since_seq = parse_uint("since_seq", value)
        elif key == "max":
            q.max = parse_uint("max", value)
        elif key == "timeout_ms":
            q.timeout_ms = parse_uint("timeout_ms", value)
        elif key in ("tag", "tags"):
            tag = value.strip()
            if tag:
                q.tags.append(tag)
        elif key == "gap_policy":
            if value == "continue":
                q.error_on_gap = False
            elif value == "error":
                q.error_on_gap = True
            else:
                raise UsageError(f"invalid gap_policy {value!r}", hint="use gap_policy=continue or gap_policy=error")
        elif key in ("last", "tail"):
            q.last = parse_uint(key, value)
    if q.timeout_ms is not None and q.timeout_ms > max_timeout_ms:
        raise UsageError(
            f"tail timeout_ms {q.timeout_ms} exceeds the server limit",
            hint=f"use timeout_ms <= {max_timeout_ms} and reconnect with since_seq",
        )
    if sse and q.since_seq is None:
        for key, value in scope["headers"]:
            if key == b"last-event-id":
                try:
                    q.since_seq = int(value) + 1
                except ValueError:
                    pass
    if q.since_seq is not None:
        q.last = None
    return q


# -------------------------------------------------------------------- framers


class JsonLines:
    """``application/jsonl``: the core's raw envelopes, one per line; a failure is a terminal error line."""

    headers = [(b"content-type", b"application/jsonl")] + _STREAMING
    batch_messages = TAIL_BATCH_MESSAGES
    keepalive_s: float | None = None
    keepalive = b""

    def drain(self, stream, limit: int, pending: list) -> tuple[bytes, int]:
        batch = _drain(stream, limit, pending)
        count = len(batch)  # before frame(), which appends the final newline's empty part
        return (self.frame(batch) if count else b""), count

    def frame(self, batch: list[bytes]) -> bytes:
        batch.append(b"")
        return b"\n".join(batch)

    def pending(self, message) -> Any:
        return message.raw

    def error(self, exc: PlasmiteError) -> bytes | None:
        return error_envelope(exc) + b"\n"


class ServerSentEvents(JsonLines):
    """The UI's events: ``id: SEQ`` / ``event: message`` / ``data: ENVELOPE``, keep-alive comments."""

    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-transform"),
               (b"x-accel-buffering", b"no")]
    keepalive_s = SSE_KEEPALIVE_S
    keepalive = b": keepalive\n\n"

    def frame(self, batch: list[bytes]) -> bytes:
        return b"".join(b"id: %d\nevent: message\ndata: %s\n\n" % (seq_of(raw), raw) for raw in batch)

    def error(self, exc: PlasmiteError) -> bytes | None:
        return b"event: error\ndata: " + error_envelope(exc) + b"\n\n"


class Lite3Frames(JsonLines):
    """``[u64be seq][u64be time_ns][u32be len][Lite3 document]`` per message; no error frame."""

    headers = [(b"content-type", b"application/x-plasmite-lite3-stream")] + _STREAMING
    batch_messages = LITE3_BATCH_MESSAGES

    def __init__(self, encoder: Callable) -> None:
        self.encoder = encoder

    def drain(self, stream, limit: int, pending: list) -> tuple[bytes, int]:
        return _drain_lite3(stream, limit, pending, self.encoder)

    def pending(self, message) -> Any:
        return message

    def error(self, exc: PlasmiteError) -> bytes | None:
        return None  # the stream just ends; a client resumes with since_seq


# ------------------------------------------------------------------ handlers


async def tail_jsonl(app, req) -> None:
    await run_tail(app, req, tail_query(req.scope, app.config.max_tail_timeout_ms, False), JsonLines())


async def tail_sse(app, req) -> None:
    await run_tail(app, req, tail_query(req.scope, app.config.max_tail_timeout_ms, True), ServerSentEvents())


async def tail_lite3(app, req) -> None:
    q = tail_query(req.scope, app.config.max_tail_timeout_ms, False)
    if q.error_on_gap:
        raise UsageError(
            "remote Lite3 tails do not support gap_policy=error: the byte stream has no error frame",
            hint="use gap_policy=continue and check seq continuity, or the JSON Lines tail (/tail)",
        )
    await run_tail(app, req, q, Lite3Frames(lite3_encoder()))


async def run_tail(app, req, q: TailQuery, framer: JsonLines) -> None:
    if not app.tail_admission.take():
        raise HttpError(
            BusyError("too many concurrent tail requests", hint="retry later, or raise --max-tail-concurrency"),
            423,
        )
    send = req.send
    handle = stream = watcher = waiter = None
    timeout_ms = q.timeout_ms if q.timeout_ms is not None else app.config.max_tail_timeout_ms
    deadline = time.monotonic() + timeout_ms / 1000.0
    keepalive_s = framer.keepalive_s
    try:
        try:
            handle = app.handle(req.params["pool"])
            handle.refs += 1
            stream = open_stream(handle.pool, q)
        except PlasmiteError as exc:
            raise HttpError(exc, exc.kind.http_status) from None
        await send({"type": "http.response.start", "status": 200,
                    "headers": framer.headers + [(b"plasmite-version", PROTOCOL_VERSION)] + req.cors})
        watcher = asyncio.ensure_future(_watch_disconnect(req.receive))
        sent = 0
        last_write = time.monotonic()
        pending: list = []
        while not watcher.done() and not app.closing:
            limit = framer.batch_messages
            if q.max is not None:
                limit = min(limit, q.max - sent)
                if limit <= 0:
                    break
            # Take what is ready without waiting, on the loop: no thread hop per batch.
            try:
                chunk, count = framer.drain(stream, limit, pending)
            except PlasmiteError as exc:
                await _send_error_frame(send, framer, exc, pending)  # what was drained goes first
                break
            pending = []
            if count:
                sent += count
                if not await send_chunk(send, chunk, more=True):
                    break
                last_write = time.monotonic()
                await asyncio.sleep(0)  # let other requests run between batches
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Nothing ready: wait for the next message on the core's shared
            # per-pool waiter thread (one thread for all tails of a pool).
            wait_for = min(remaining, TAIL_RECHECK_S)
            if keepalive_s is not None:
                wait_for = min(wait_for, max(0.0, keepalive_s - (time.monotonic() - last_write)))
            waiter = asyncio.ensure_future(stream.anext())
            done, _ = await asyncio.wait({waiter, watcher}, timeout=wait_for, return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                w, waiter = waiter, None
                try:
                    message = w.result()
                except PlasmiteError as exc:
                    await _send_error_frame(send, framer, exc)
                    break
                if message is None:
                    break
                pending = [framer.pending(message)]
                continue
            waiter.cancel()
            try:
                message = await waiter  # it may have finished before the cancel: keep its message
            except (asyncio.CancelledError, PlasmiteError):
                message = None
            waiter = None
            if message is not None:
                pending = [framer.pending(message)]
                continue
            if keepalive_s is not None and time.monotonic() - last_write >= keepalive_s:
                if not await send_chunk(send, framer.keepalive, more=True):
                    break
                last_write = time.monotonic()
        await send_chunk(send, b"", more=False)
    finally:
        if waiter is not None:
            waiter.cancel()
        if watcher is not None:
            watcher.cancel()
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
        if handle is not None:
            app.release(handle)
        app.tail_admission.give()


async def _send_error_frame(send, framer: JsonLines, exc: PlasmiteError, done: list = ()) -> None:
    frame = framer.error(exc)
    if frame is not None:
        if done:
            frame = framer.frame(list(done)) + frame
        await send_chunk(send, frame, more=True)


def open_stream(pool, q: TailQuery):
    """A core Stream for the query; a since_seq already overwritten is RetentionGap (410) up front."""
    if q.error_on_gap and q.since_seq is not None:
        oldest, _newest = pool.bounds()
        if oldest is not None and q.since_seq < oldest:
            raise RetentionGapError(
                f"messages {q.since_seq}-{oldest - 1} are no longer retained; "
                f"the next available message is {oldest}",
                seq=q.since_seq,
                hint="inspect the pool bounds, then reopen the tail from an available seq",
            )
    kwargs: dict[str, Any] = {"error_on_gap": q.error_on_gap}
    if q.tags:
        kwargs["tags"] = list(q.tags)
    if q.since_seq is not None:
        kwargs["since_seq"] = q.since_seq
    elif q.last is not None:
        kwargs["last"] = q.last
    return pool.open_stream(**kwargs)


def _drain(stream, limit: int, batch: list[bytes]) -> list[bytes]:
    """Append to ``batch`` the envelopes available now (never waits), up to
    ``limit`` / about 256 KiB, by the stream's bulk ``poll_json`` (envelopes
    assembled from the frames, no Message per message). A damaged frame ends
    a poll early; the next drain raises its error after these are sent."""
    size = sum(map(len, batch))
    poll = stream.poll_json
    while len(batch) < limit and size < TAIL_BATCH_BYTES:
        got = poll(min(TAIL_POLL_MESSAGES, limit - len(batch)))
        if not got:
            break
        batch += got
        size += sum(map(len, got))
    return batch


def _drain_lite3(stream, limit: int, pending: list, encoder: Callable) -> tuple[bytes, int]:
    """Lite3 stream frames for the messages available now (never waits), as one write.

    Up to ``limit`` messages or about 256 KiB; ``pending`` holds messages
    already taken from the stream. Polls in small steps so no message is taken
    that does not fit this write.
    """
    parts = []
    size = 0
    count = 0
    head = _frame_head
    messages = pending
    while True:
        for message in messages:
            payload = encoder(message).payload
            parts.append(head(message.seq, message.time_ns, len(payload)))
            parts.append(payload)
            size += 20 + len(payload)
        count += len(messages)
        if count >= limit or size >= TAIL_BATCH_BYTES:
            break
        messages = stream.poll(min(32, limit - count))
        if not messages:
            break
    return b"".join(parts), count


async def _watch_disconnect(receive) -> None:
    """Completes when the client goes away (the request body of a GET is empty)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
