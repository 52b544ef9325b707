"""A small HTTP/1.1 client (sync over sockets, async over asyncio streams).

Why not httpx or http.client: on a 2-core box against the same server, one
keep-alive httpx client made ~1,700 appends/s and http.client ~4,200/s, while
this writer/parser made ~8,000/s: a remote append is a 100-byte request, so
per-request client overhead is the whole budget. The protocol needs little:
keep-alive requests with Content-Length bodies, responses framed by
Content-Length, chunked transfer or connection close, and streamed response
bodies for tails. TLS is the standard library's ``ssl``.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import time
from typing import Any

from plasmite_core.errors import IoError, UsageError

MAX_HEAD = 64 * 1024
RECV = 256 * 1024


class ProtocolError(IoError):
    pass


def make_ssl_context(tls_ca: str | None = None, tls_skip_verify: bool = False) -> ssl.SSLContext:
    if tls_skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if tls_ca is not None:
        try:
            return ssl.create_default_context(cafile=str(tls_ca))
        except FileNotFoundError:
            raise UsageError(f"TLS CA file not found: {tls_ca}", str(tls_ca), hint="fix --tls-ca") from None
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"cannot load TLS CA file {tls_ca}: {exc}", str(tls_ca),
                hint="give a PEM certificate, e.g. the server's plasmite-tls-cert.pem",
            ) from None
    return ssl.create_default_context()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (names lower-cased; repeated headers joined with ", ")."""
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"malformed HTTP status line: {lines[0][:80]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise ProtocolError(f"malformed HTTP status: {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(b":")
        name = key.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[name] = headers[name] + ", " + text if name in headers else text
    return status, headers


def build_request(method: str, target: str, base_headers: bytes, body: bytes | None, extra: bytes = b"") -> bytes:
    out = b"%s %s HTTP/1.1\r\n%s%s" % (method.encode(), target.encode("ascii"), base_headers, extra)
    if body is not None:
        return out + b"Content-Length: %d\r\n\r\n" % len(body) + body
    return out + b"\r\n"


def _framing(headers: dict[str, str]) -> tuple[str, int]:
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te:
        return "chunked", -1
    cl = headers.get("content-length")
    if cl is not None:
        try:
            return "length", int(cl)
        except ValueError:
            raise ProtocolError(f"invalid Content-Length: {cl!r}") from None
    return "close", -1


class _Endpoint:
    """Where both connection kinds connect, and the errors of connecting."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, server_hostname: str,
                 connect_timeout: float = 10.0, read_timeout: float | None = 60.0) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def _unreachable(self, detail: object) -> IoError:
        return IoError(f"cannot connect to {self.server_hostname}:{self.port}: {detail}",
                       hint="check that `pls serve` is running there and the URL's host and port")

    def _unverified(self, exc: ssl.SSLCertVerificationError) -> IoError:
        return IoError(
            f"TLS certificate verification failed for {self.server_hostname}: {exc.verify_message}",
            hint="pass the server's certificate with --tls-ca (tls_ca=...), or --tls-skip-verify "
                 "(tls_skip_verify=True) for development",
        )


class SyncConnection(_Endpoint):
    """One keep-alive connection; reconnects lazily after the server closes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.last_used = 0.0

    # -- connection
    def connect(self) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise self._unreachable(exc.strerror or exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                raise self._unverified(exc) from None
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise IoError(
                    f"TLS handshake with {self.server_hostname}:{self.port} failed: {exc}",
                    hint="is the server speaking https? use http:// for a server without TLS",
                ) from None
        sock.settimeout(self.read_timeout)
        self.sock = sock
        self.buf = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.buf = bytearray()

    def settimeout(self, timeout: float | None) -> None:
        if self.sock is not None:
            self.sock.settimeout(timeout)

    # -- low-level reads
    def _recv(self) -> bool:
        """Read more bytes into the buffer; False on EOF."""
        assert self.sock is not None
        data = self.sock.recv(RECV)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                status, headers = parse_head(head)
                if 100 <= status < 200:
                    continue
                return status, headers
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("HTTP response head too large")
            if not self._recv():
                raise ConnectionResetError("connection closed before a response")

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._recv():
                raise ProtocolError("connection closed in the middle of a response body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("HTTP chunk header too large")
            if not self._recv():
                raise ProtocolError("connection closed in the middle of a chunked body")

    def read_body(self, headers: dict[str, str]) -> tuple[bytes, bool]:
        """The whole body and whether the connection can be reused."""
        mode, length = _framing(headers)
        keep = "close" not in headers.get("connection", "").lower()
        if mode == "length":
            return self.read_exact(length), keep
        if mode == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.read_line().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.read_line():
                        pass
                    return b"".join(parts), keep
                parts.append(self.read_exact(size))
                self.read_exact(2)
        chunks = [bytes(self.buf)]
        self.buf = bytearray()
        while self._recv():
            chunks.append(bytes(self.buf))
            self.buf = bytearray()
        return b"".join(chunks), False

    # -- requests
    def _stale(self) -> bool:  # noqa: D401
        """Whether a kept-alive connection was closed by the server while idle.

        Checked before reusing it, so a request (an append is not safe to
        repeat) is not sent into a connection that is already gone.
        """
        assert self.sock is not None
        if self.buf:
            return True  # bytes nobody asked for: out of step
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)  # EOF (or junk) is pending on an idle connection

    def send_request(self, data: bytes) -> None:
        # A connection used within the last half second cannot have hit the
        # server's idle timeout; older ones are checked (one poll syscall).
        if self.sock is not None and time.monotonic() - self.last_used > 0.5 and self._stale():
            self.close()
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(data)

    def request(self, data: bytes, *, retry_safe: bool = True) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its response (reconnecting once if a kept-alive
        connection turns out to be closed before any response byte)."""
        for attempt in (0, 1):
            fresh = self.sock is None
            try:
                self.send_request(data)
                status, headers = self.read_head()
                body, keep = self.read_body(headers)
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
                self.close()
                if attempt == 0 and not fresh and retry_safe:
                    continue
                raise IoError(f"connection to {self.server_hostname}:{self.port} failed: {exc}",
                              hint="check the server; the request may be retried") from None
            except socket.timeout:
                self.close()
                raise IoError(f"timed out waiting for {self.server_hostname}:{self.port}",
                              hint="the server did not answer in time") from None
            except OSError as exc:
                self.close()
                if isinstance(exc, IoError):
                    raise
                raise IoError(f"connection to {self.server_hostname}:{self.port} failed: {exc}") from None
            if not keep:
                self.close()
            self.last_used = time.monotonic()
            return status, headers, body
        raise AssertionError("unreachable")


class SyncBodyStream:
    """Incremental reader of a streamed response body (chunked, length or close-delimited).

    Socket timeouts may interrupt ``read_some`` at any point without losing
    bytes: decoding state lives here, not on the stack.
    """

    def __init__(self, conn: SyncConnection, headers: dict[str, str]) -> None:
        self.conn = conn
        self.mode, self.remaining = _framing(headers)
        self.chunk_left = 0  # payload bytes left in the current chunk (chunked mode)
        self.need_crlf = False
        self.done = False

    def _decode(self) -> bytes:
        buf = self.conn.buf
        if self.mode == "close":
            out = bytes(buf)
            buf.clear()
            return out
        if self.mode == "length":
            take = min(self.remaining, len(buf))
            out = bytes(buf[:take])
            del buf[:take]
            self.remaining -= take
            if self.remaining == 0:
                self.done = True
            return out
        parts: list[bytes] = []
        while True:
            if self.chunk_left:
                take = min(self.chunk_left, len(buf))
                if not take:
                    break
                parts.append(bytes(buf[:take]))
                del buf[:take]
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.need_crlf = True
                continue
            if self.need_crlf:
                if len(buf) < 2:
                    break
                del buf[:2]
                self.need_crlf = False
            i = buf.find(b"\r\n")
            if i < 0:
                break
            size_text = bytes(buf[:i]).split(b";", 1)[0].strip()
            try:
                size = int(size_text or b"0", 16)
            except ValueError:
                raise ProtocolError(f"malformed chunk size {size_text[:20]!r}") from None
            if size == 0:
                # Last chunk: "0\r\n", optional trailers, then an empty line.
                end = buf.find(b"\r\n\r\n", i)
                if end < 0:
                    break
                del buf[: end + 4]
                self.done = True
                break
            del buf[: i + 2]
            self.chunk_left = size
        return b"".join(parts)

    def read_some(self) -> bytes | None:
        """Some payload bytes; None at the end of the body. Raises socket.timeout."""
        while True:
            data = self._decode()
            if data:
                return data
            if self.done:
                return None
            if not self.conn._recv():
                if self.mode == "close":
                    self.done = True
                    return None
                raise ProtocolError("connection closed in the middle of a streamed body")


class AsyncConnection(_Endpoint):
    """The asyncio counterpart of SyncConnection (one request at a time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        await self.close()
        kwargs: dict[str, Any] = {}
        if self.ssl_context is not None:
            kwargs = {"ssl": self.ssl_context, "server_hostname": self.server_hostname}
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_HEAD * 4, **kwargs), self.connect_timeout
            )
        except ssl.SSLCertVerificationError as exc:
            raise self._unverified(exc) from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise self._unreachable(getattr(exc, "strerror", None) or exc or "timeout") from None
        assert self.writer is not None
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    async def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
            self.writer = None
            self.reader = None

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        while True:
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise ConnectionResetError("connection closed before a response") from None
                raise ProtocolError("connection closed in the middle of a response head") from None
            except asyncio.LimitOverrunError:
                raise ProtocolError("HTTP response head too large") from None
            status, headers = parse_head(head[:-4])
            if not 100 <= status < 200:
                return status, headers

    async def read_body(self, headers: dict[str, str]) -> tuple[bytes, bool]:
        assert self.reader is not None
        mode, length = _framing(headers)
        keep = "close" not in headers.get("connection", "").lower()
        try:
            if mode == "length":
                return await self.reader.readexactly(length), keep
            if mode == "chunked":
                parts = []
                async for part in self.iter_chunked():
                    parts.append(part)
                return b"".join(parts), keep
            return await self.reader.read(), False
        except asyncio.IncompleteReadError:
            raise ProtocolError("connection closed in the middle of a response body") from None

    async def iter_chunked(self):
        assert self.reader is not None
        reader = self.reader
        while True:
            line = await reader.readline()
            if not line:
                raise ProtocolError("connection closed in the middle of a chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)

    async def request(self, data: bytes, *, retry_safe: bool = True) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            if self.reader is not None and (self.reader.at_eof() or self.writer is None or self.writer.is_closing()):
                await self.close()  # the server closed this kept-alive connection while idle
            fresh = self.writer is None
            try:
                if self.writer is None:
                    await self.connect()
                assert self.writer is not None
                self.writer.write(data)
                await self.writer.drain()
                status, headers = await asyncio.wait_for(self.read_head(), self.read_timeout)
                body, keep = await asyncio.wait_for(self.read_body(headers), self.read_timeout)
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
                await self.close()
                if attempt == 0 and not fresh and retry_safe:
                    continue
                raise IoError(f"connection to {self.server_hostname}:{self.port} failed: {exc}") from None
            except asyncio.TimeoutError:
                await self.close()
                raise IoError(f"timed out waiting for {self.server_hostname}:{self.port}") from None
            except OSError as exc:
                await self.close()
                if isinstance(exc, IoError):
                    raise
                raise IoError(f"connection to {self.server_hostname}:{self.port} failed: {exc}") from None
            if not keep:
                await self.close()
            return status, headers, body
        raise AssertionError("unreachable")


def split_lines(pending: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines of ``pending + data`` and the incomplete rest."""
    buf = pending + data if pending else data
    if b"\n" not in buf:
        return [], buf
    lines = buf.split(b"\n")
    rest = lines.pop()
    return lines, rest
