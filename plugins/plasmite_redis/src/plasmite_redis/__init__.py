"""Plasmite pools on Redis Streams.

``RedisClient("redis://host:6379")`` has the local ``Client`` surface
(``create_pool``, ``open_pool``, ``pool``, ``pool_info``, ``list_pools``,
``delete_pool``) and its pools the local ``Pool`` surface, with the same seq,
time, retention-gap and error semantics; ``open_pool_url`` opens
``redis://host:port/POOL`` in one call.
"""

from .client import RedisClient, RedisPool, open_pool_url
from .stream import RedisStream

__all__ = ["RedisClient", "RedisPool", "RedisStream", "open_pool_url"]
