"""Counters for ``/metrics/plasma`` (Plasma's JSON), ``/metrics`` (Prometheus)
and the runtime figures that replace Plasma's ``/metrics/go``.

Each gateway has its own Prometheus registry, so several gateways (or tests)
in one process never share or collide on metrics.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the app)

TRANSPORTS = ("sse", "grpc")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("plasma_connections", "Connected subscribers", ["transport"], registry=self.registry)
        self.events = Counter("plasma_events", "Events read from the pools and dispatched", registry=self.registry)
        self.sent = Counter("plasma_events_sent", "Events handed to subscribers", ["transport"], registry=self.registry)
        self.skipped = Counter("plasma_events_skipped", "Messages that were not Plasma events, skipped",
                               ["source"], registry=self.registry)
        self.recorded = Counter("plasma_redis_recorded", "Redis channel messages recorded into the pool",
                                registry=self.registry)
        self.counts = dict.fromkeys(TRANSPORTS, 0)
        for t in TRANSPORTS:
            self.connections.labels(transport=t)
            self.sent.labels(transport=t)
        for s in ("pool", "redis"):
            self.skipped.labels(source=s)
        self.started = time.time()

    def connect(self, transport: str, delta: int) -> None:
        self.counts[transport] += delta
        self.connections.labels(transport=transport).inc(delta)

    def plasma(self) -> dict:
        """Plasma's /metrics/plasma document."""
        return {
            "connections": sum(self.counts.values()),
            "connections_sse": self.counts["sse"],
            "connections_grpc": self.counts["grpc"],
        }

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)

    def runtime(self) -> dict:
        """The Python process in place of Plasma's Go runtime figures."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "os": sys.platform,
            "arch": platform.machine(),
            "cpu_num": os.cpu_count(),
            "thread_num": threading.active_count(),
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started, 3),
            "gc_counts": list(gc.get_count()),
            "gc_collections": [s["collections"] for s in gc.get_stats()],
            "gc_collected": sum(s["collected"] for s in gc.get_stats()),
            "memory_rss": _rss(),
            "memory_max_rss": usage.ru_maxrss * 1024,
            "cpu_user_seconds": usage.ru_utime,
            "cpu_system_seconds": usage.ru_stime,
        }


def _rss() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
