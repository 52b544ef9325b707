"""Plasma's Redis subscriber, recording into a pool.

Subscribes to ``PLASMA_SUBSCRIBER_REDIS_CHANNELS`` as Plasma does and appends
every Plasma-shaped message to the first followed pool (tagged with its
channel), so the pool is the single event source and late subscribers can
replay what was published. Malformed JSON is logged and skipped. When Redis
goes away the loop retries every ``RETRY_INTERVAL``; after ``MAX_RETRY``
failures in a row it keeps retrying (``alive``) or stops the gateway (``die``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from plasmite_core.protocols import PoolHandle

from .config import PlasmaConfig
from .events import BadEvent, from_json_text
from .hub import is_local
from .metrics import Metrics


def redis_client(cfg: PlasmaConfig, timeout: float | None = None) -> aioredis.Redis:
    host, _, port = cfg.redis_addr.rpartition(":")
    return aioredis.Redis(host=host or "localhost", port=int(port or 6379), db=cfg.redis_db,
                          password=cfg.redis_password or None, socket_timeout=timeout,
                          socket_connect_timeout=timeout or 5.0)


class RedisSource:
    def __init__(self, cfg: PlasmaConfig, pool: PoolHandle, metrics: Metrics, log: logging.Logger) -> None:
        self.cfg = cfg
        self.pool = pool
        self.metrics = metrics
        self.log = log
        self.connected = False
        self._task: asyncio.Task | None = None
        self._pinger = redis_client(cfg, timeout=1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="plasma-redis-subscriber")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self._pinger.aclose()

    async def ping(self) -> str | None:
        """None when Redis answers now (what /hc asks, as Plasma), else the problem."""
        try:
            await asyncio.wait_for(self._pinger.ping(), 2.0)
            return None
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            return f"redis {self.cfg.redis_addr}: {exc or type(exc).__name__}"

    async def publish(self, payload: str) -> None:
        await self._pinger.publish(self.cfg.redis_channels[0], payload)

    async def _run(self) -> None:
        failures = 0
        while True:
            client = redis_client(self.cfg)
            try:
                ps = client.pubsub(ignore_subscribe_messages=True)
                await ps.subscribe(*self.cfg.redis_channels)
                if not self.connected:
                    self.log.info("subscribed to redis", extra={"fields": {
                        "addr": self.cfg.redis_addr, "channels": self.cfg.redis_channels}})
                self.connected = True
                failures = 0
                while True:
                    msg = await ps.get_message(timeout=self.cfg.redis_timeout)
                    if msg is None:
                        await asyncio.wait_for(ps.ping(), max(self.cfg.redis_timeout, 1.0))
                        continue
                    if msg.get("type") == "message":
                        await self._record(msg)
            except asyncio.CancelledError:
                await client.aclose()
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                self.connected = False
                failures += 1
                self.log.error("failed to receive from redis", extra={"fields": {
                    "addr": self.cfg.redis_addr, "error": str(exc) or type(exc).__name__,
                    "errorCount": failures, "maxErrorCount": self.cfg.redis_max_retry}})
                if failures >= self.cfg.redis_max_retry:
                    if self.cfg.redis_over_max_retry_behavior == "die":
                        self.log.critical("over max retry count: stopping the gateway", extra={"fields": {
                            "addr": self.cfg.redis_addr}})
                        os.kill(os.getpid(), signal.SIGTERM)
                        return
                    failures = 0
            try:
                await client.aclose()
            except Exception:
                pass
            await asyncio.sleep(self.cfg.redis_retry_interval)

    async def _record(self, msg: dict) -> None:
        channel = msg["channel"].decode("utf-8", "replace") if isinstance(msg["channel"], bytes) else msg["channel"]
        raw = msg["data"]
        try:
            value = from_json_text(raw)
        except BadEvent as exc:
            self.metrics.skipped.labels(source="redis").inc()
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            self.log.info("skipped a channel message that is not a Plasma event", extra={"fields": {
                "channel": channel, "payload": text[:1000], "error": str(exc)}})
            return
        try:
            if is_local(self.pool):
                self.pool.append(value, [channel])  # a local append takes microseconds
            else:
                await asyncio.to_thread(self.pool.append, value, [channel])  # a remote one a round trip
        except Exception as exc:
            self.log.error("failed to record a channel message into the pool", extra={"fields": {
                "channel": channel, "error": str(exc)}})
            return
        self.metrics.recorded.inc()
