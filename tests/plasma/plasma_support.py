"""Clients for the Plasma gateway tests: a raw-socket SSE reader and a
threaded gRPC subscriber built on the committed generated stubs."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time


class SSE:
    """An SSE connection read on a thread; frames land in ``self.frames``."""

    def __init__(self, port: int, query: str, headers: dict | None = None, timeout: float = 30.0,
                 paused: bool = False) -> None:
        self.sock = socket.socket()
        if paused:  # a small receive buffer, not read until resume(): a subscriber that falls behind
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        hdrs = {"Host": f"127.0.0.1:{port}", "Accept": "text/event-stream", **(headers or {})}
        req = f"GET /?{query} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self.file.readline().decode().strip()
            if not line:
                break
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.frames: queue.Queue = queue.Queue()
        self.raw: list[str] = []
        if self.status == 200 and not paused:
            self.resume()

    def resume(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        frame: dict = {}
        chunked = self.headers.get("transfer-encoding") == "chunked"
        try:
            for line in self._lines(chunked):
                self.raw.append(line)
                if line == "":
                    if frame:
                        self.frames.put(frame)
                    frame = {}
                    continue
                if line.startswith(":"):
                    frame.setdefault("comment", line[1:])
                    continue
                k, _, v = line.partition(":")
                frame[k] = v[1:] if v.startswith(" ") else v
        except (OSError, ValueError):
            pass
        self.frames.put(None)

    def _lines(self, chunked: bool):
        buf = b""
        while True:
            if chunked:
                size_line = self.file.readline()
                if not size_line:
                    return
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                buf += self.file.read(size)
                self.file.readline()
            else:
                chunk = self.file.readline()
                if not chunk:
                    return
                buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode()

    def next(self, timeout: float = 20.0) -> dict | None:
        return self.frames.get(timeout=timeout)

    def events(self, n: int, timeout: float = 20.0) -> list[dict]:
        """The next n data events (comments and retry frames skipped)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            f = self.frames.get(timeout=max(0.1, deadline - time.monotonic()))
            if f is None:
                raise AssertionError(f"stream ended after {out}")
            if "data" in f:
                f["json"] = json.loads(f["data"])
                out.append(f)
        return out

    def quiet(self, seconds: float) -> list[dict]:
        """Data events arriving within ``seconds`` (expected: none)."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                f = self.frames.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if f and "data" in f:
                got.append(f)
        return got

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class GrpcSub:
    """A bidirectional Events stream: ``send(types)``, ``force_close()``,
    responses in ``self.payloads`` (None once the stream has ended)."""

    def __init__(self, target: str, credentials=None) -> None:
        import grpc

        from plasmite_plasma import stream_pb2, stream_pb2_grpc

        self.pb = stream_pb2
        self.channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
        self.stub = stream_pb2_grpc.StreamServiceStub(self.channel)
        self.requests: queue.Queue = queue.Queue()
        self.payloads: queue.Queue = queue.Queue()
        self.status = None
        self.call = self.stub.Events(self._requests())
        threading.Thread(target=self._read, daemon=True).start()

    def _requests(self):
        while True:
            r = self.requests.get()
            if r is None:
                return
            yield r

    def _read(self) -> None:
        import grpc

        try:
            for p in self.call:
                self.payloads.put((p.eventType.type, p.data))
            self.status = self.call.code()
        except grpc.RpcError as exc:
            self.status = exc.code()
        self.payloads.put(None)

    def send(self, types: list[str]) -> None:
        self.requests.put(self.pb.Request(Events=[self.pb.EventType(type=t) for t in types]))

    def force_close(self) -> None:
        self.requests.put(self.pb.Request(forceClose=True))

    def take(self, n: int, timeout: float = 20.0) -> list:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            p = self.payloads.get(timeout=max(0.1, deadline - time.monotonic()))
            if p is None:
                raise AssertionError(f"stream ended after {out}")
            out.append(p)
        return out

    def quiet(self, seconds: float) -> list:
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                p = self.payloads.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if p is None:
                self.payloads.put(None)
                break
            got.append(p)
        return got

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()
        self.channel.close()


def wait_until(pred, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("condition not met in time")
