"""uvicorn tuning: one syscall per response, and guards against slow connections.

uvicorn's httptools protocol writes the status line + headers and then the
body with two ``transport.write`` calls, so every small JSON response costs
two send syscalls, two TCP segments and two wake-ups of the client. On a
2-core machine that halved the append rate. This protocol subclass hands
uvicorn a transport proxy that gathers the writes made during one event-loop
turn and sends them together at the end of the turn.
"""

from __future__ import annotations


class _CoalescingTransport:
    __slots__ = ("_transport", "_loop", "_parts", "_scheduled")

    def __init__(self, transport, loop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []
        self._scheduled = False

    def write(self, data) -> None:
        if not data:
            return
        self._parts.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._parts:
            data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


# Connection phases, for the timeouts and the connection cap.
_HEAD, _BODY, _ACTIVE, _IDLE = 0, 1, 2, 3
SWEEP_S = 0.5


def effective_max_connections(requested: int) -> int:
    """The connection cap actually used: at most half the descriptor limit.

    The other half stays for pool files (the app caches at most a quarter of
    the limit), the listening socket and the new connections that are
    answered 503 or make room, so descriptors never run out (an exhausted
    limit makes accept() fail and every request reset).
    """
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return requested
    if soft == resource.RLIM_INFINITY:
        return requested
    return min(requested, max(8, soft // 2))


def raise_descriptor_limit() -> None:
    """Raise the soft descriptor limit to the hard one (capped at 65,536), as servers usually do."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, OSError, ValueError):
        pass


def _error_response(status: bytes, kind: str, message: str, hint: str) -> bytes:
    import json

    body = json.dumps({"error": {"kind": kind, "message": message, "hint": hint}}).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\nplasmite-version: 0\r\n\r\n" + body)


def protocol_class(*, idle_timeout_ms: int, head_timeout_ms: int, body_timeout_ms: int, max_connections: int):
    """The httptools protocol with coalesced writes and slow-connection guards.

    uvicorn closes a keep-alive connection that stays idle, but nothing else:
    a connection that sends nothing, half a request head, or a declared body
    that never arrives stays open forever (the first byte even cancels the
    idle timer), so a few hundred of them exhaust the descriptors. Here each
    connection records its phase and since when; a sweep every half second
    closes those past the head, body or idle timeout (408 when no response
    has started). Beyond ``max_connections`` a new connection makes room by
    closing the oldest connection still sending a request head, else the
    oldest idle one, else the oldest still sending a body; when every
    connection has a request in progress (a tail, say) the new one is answered
    503 and closed at once. Returns None when httptools is missing.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    head_s, body_s, idle_s = head_timeout_ms / 1000.0, body_timeout_ms / 1000.0, idle_timeout_ms / 1000.0
    limits = {_HEAD: head_s, _BODY: body_s, _IDLE: idle_s}
    head_408 = _error_response(b"408 Request Timeout", "Usage", f"request head not received within {head_timeout_ms} ms",
                               "send the whole request head at once (the operator sets --head-timeout-ms)")
    body_408 = _error_response(b"408 Request Timeout", "Usage", f"request body not received within {body_timeout_ms} ms",
                               "send the whole body promptly (the operator sets --body-timeout-ms)")
    full_503 = _error_response(b"503 Service Unavailable", "Busy", "server is at its connection limit",
                               "retry shortly; the operator sets --max-connections")
    sweeping: dict = {}

    def sweep(connections, loop) -> None:
        now = loop.time()
        for conn in list(connections):
            phase = getattr(conn, "_phase", _ACTIVE)
            limit = limits.get(phase)
            if limit is not None and now - conn._since >= limit:
                conn._expire()
        if connections:
            sweeping["timer"] = loop.call_later(SWEEP_S, sweep, connections, loop)
        else:
            sweeping.pop("timer", None)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _phase = _HEAD
        _since = 0.0

        def connection_made(self, transport) -> None:  # type: ignore[override]
            loop = self.loop
            super().connection_made(_CoalescingTransport(transport, loop))
            self._phase = _HEAD
            self._since = loop.time()
            if len(self.connections) > max_connections:
                self._make_room()
            if "timer" not in sweeping:
                sweeping["timer"] = loop.call_later(SWEEP_S, sweep, self.connections, loop)

        def _make_room(self) -> None:
            # Oldest first, in this order: still sending a head, idle, still sending a body.
            oldest = {_HEAD: None, _IDLE: None, _BODY: None}
            for conn in self.connections:
                phase = getattr(conn, "_phase", _ACTIVE)
                if phase in oldest and conn is not self:
                    best = oldest[phase]
                    if best is None or conn._since < best._since:
                        oldest[phase] = conn
            victim = oldest[_HEAD] or oldest[_IDLE] or oldest[_BODY]
            if victim is not None:
                victim._phase = _ACTIVE  # closing; not a candidate again
                victim.transport.close()
                return
            self._phase = _ACTIVE
            self.transport.write(full_503)
            self.transport.close()

        def _expire(self) -> None:
            phase, self._phase = self._phase, _ACTIVE
            transport = self.transport
            if transport.is_closing():
                return
            cycle = self.cycle
            idle = cycle is None or cycle.response_complete
            if phase == _HEAD and idle:
                transport.write(head_408)
            elif phase == _BODY and cycle is not None and not cycle.response_started:
                transport.write(body_408)
            transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _HEAD
            self._since = self.loop.time()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase = _BODY
            self._since = self.loop.time()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self._phase == _BODY:
                self._phase = _ACTIVE

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.timeout_keep_alive_task is not None:  # no pipelined request started: idle
                self._phase = _IDLE
                self._since = self.loop.time()

    return GuardedHttpToolsProtocol


def graceful_server_class(on_exit):
    """A ``uvicorn.Server`` that ends with exit status 0 after SIGTERM or SIGINT.

    ``on_exit()`` runs first on the signal (the app ends its open tails, so
    they finish their responses instead of being cancelled). uvicorn then
    shuts down gracefully and, by default, re-raises the signal it caught, so
    the process would die by SIGTERM (status 143) or raise KeyboardInterrupt
    (130). A stop that systemd or a container runtime asked for and that
    completed is a success, so this server forgets the caught signals before
    uvicorn can re-raise them.
    """
    import contextlib

    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            on_exit()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    return GracefulServer
