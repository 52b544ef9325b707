"""One gateway: its pools, hub, optional Redis subscriber, metrics and logs.

The HTTP app, the metrics app and the gRPC service all hold the same
``Gateway``; ``start``/``stop`` are idempotent so a mounted app can start it
lazily on its first request when the host application sends no lifespan.
"""

from __future__ import annotations

import asyncio
import itertools
import json

from plasmite_core.errors import UsageError
from plasmite_core.protocols import PoolHandle

from .config import PlasmaConfig, describe
from .events import from_plasma
from .hub import Hub
from .logs import make_logger
from .metrics import Metrics

_ids = itertools.count(1)


def open_pool(ref: str, pool_dir: str | None) -> PoolHandle:
    """A local pool (created when missing) or, for a URL, the pool through the
    transport plugin registered for its scheme (http, redis, ...)."""
    if "://" in ref:
        from urllib.parse import urlsplit

        from plasmite_core import plugins

        parts = urlsplit(ref)
        base, _, name = ref.rpartition("/")
        if not name or not parts.netloc:
            raise UsageError(f"invalid pool URL {ref}", hint="use scheme://host:port/POOL")
        try:
            factory = plugins.transport(parts.scheme)
        except UsageError:
            raise UsageError(f"no transport for {parts.scheme}:// pools is installed",
                             hint="`pls plugins` lists the installed transports") from None
        return factory(base).open_pool(name)
    from plasmite_core.client import Client

    return Client(pool_dir).pool(ref)


class Gateway:
    def __init__(self, cfg: PlasmaConfig, pools: list[tuple[str, PoolHandle]] | None = None) -> None:
        self.cfg = cfg
        ident = f"g{next(_ids)}"
        self.access_log = make_logger("access", cfg.access_log_out, cfg.access_log_level, ident)
        self.error_log = make_logger("error", cfg.error_log_out, cfg.error_log_level, ident)
        self.metrics = Metrics()
        if pools is None:
            pools = [(ref, open_pool(ref, cfg.pool_dir)) for ref in cfg.pools]
        self.hub = Hub(pools, cfg.type_from, self.metrics, self.error_log)
        self.redis = None
        if cfg.subscriber_type == "redis":
            from .redis_source import RedisSource

            self.redis = RedisSource(cfg, self.hub.pools[0], self.metrics, self.error_log)
        self._started = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._started:
                return
            await self.hub.start()
            if self.redis is not None:
                self.redis.start()
            self._started = True
            self.error_log.info("gateway started", extra={"fields": {"config": describe(self.cfg)}})

    async def stop(self) -> None:
        async with self._lock:
            if not self._started:
                return
            self._started = False
            await self.hub.stop()
            if self.redis is not None:
                await self.redis.stop()

    async def health(self) -> list[str]:
        """Problems that make /hc answer 500; empty when healthy."""
        problems = await self.hub.check()
        if self.redis is not None:
            problem = await self.redis.ping()
            if problem:
                problems.append(problem)
        return problems

    async def publish(self, body: bytes) -> None:
        """The debug page's test event: through Redis when subscribed to it (as
        Plasma), otherwise straight into the first pool. Raises ValueError."""
        value = json.loads(body)
        from_plasma(value)
        if self.redis is not None:
            await self.redis.publish(json.dumps(value, separators=(",", ":")))
        else:
            await asyncio.to_thread(self.hub.pools[0].append, {"meta": value["meta"], "data": value.get("data")})
