"""Replay timing: messages re-emitted with their original spacing / speed.

Each message is due at ``start + (its time - first time) / speed``, measured
from the first message, so sleep overshoot never accumulates over a long
replay. Every transport's ``replay`` and ``pls follow --replay`` use this.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

from .envelope import Message
from .errors import UsageError


def check_speed(speed: float) -> float:
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or speed != speed or speed < 0 \
            or speed == float("inf"):
        raise UsageError(f"replay speed must be a finite number >= 0, got {speed!r}",
                         hint="use 1 for original timing, 2 for twice as fast, 0 for no delay")
    return float(speed)


def paced(messages: Iterable[Message], speed: float, *,
          before_sleep: Callable[[], object] | None = None) -> Iterator[Message]:
    """Yield ``messages`` on their original schedule divided by ``speed`` (0: no delay).

    ``before_sleep`` runs before each pause (the CLI flushes its output there).
    """
    speed = check_speed(speed)
    start = 0.0
    first: int | None = None
    for m in messages:
        if speed > 0:
            if first is None:
                start, first = time.monotonic(), m.time_ns
            else:
                delay = start + (m.time_ns - first) / 1e9 / speed - time.monotonic()
                if delay > 0:
                    if before_sleep is not None:
                        before_sleep()
                    time.sleep(delay)
        yield m
