"""What every pool stream derives from ``next()``: JSON, iteration, position, close.

The local stream and transport streams (for example plasmite-redis) share it,
so the iteration protocol of ``protocols.PoolStream`` is written once. A
subclass provides ``next(timeout_ms)`` and keeps ``_expected`` (the next seq
it will deliver), ``_done`` and ``_buf`` (messages read ahead).
"""

from __future__ import annotations

from typing import Any, Iterator

from .envelope import Message


class BufferedStream:
    """Derived stream methods over a subclass's ``next()``."""

    _expected: int | None
    _done: bool
    _buf: Any

    def next(self, timeout_ms: int | None = None) -> Message | None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def next_json(self, timeout_ms: int | None = None) -> bytes | None:
        m = self.next(timeout_ms)
        return None if m is None else m.raw

    def messages(self) -> Iterator[Message]:
        while True:
            m = self.next()
            if m is None:
                return
            yield m

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        m = self.next()
        if m is None:
            raise StopIteration
        return m.raw

    @property
    def position(self) -> int | None:
        """The next seq this stream expects (its resume checkpoint)."""
        return self._expected

    def close(self) -> None:
        self._done = True
        self._buf.clear()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
