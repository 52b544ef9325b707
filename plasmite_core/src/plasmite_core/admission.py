"""A non-blocking admission counter shared by the server and the MCP tools.

``take()`` fails at once instead of queueing, so a full budget (open tails,
waits, storage workers) answers Busy rather than stalling the caller.
"""

from __future__ import annotations

import threading


class Slots:
    """At most ``capacity`` holders at once; ``take()`` never blocks."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.active >= self.capacity:
                return False
            self.active += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.active -= 1
