"""Where the server's pools live: a directory of pool files (the default), or
the server of a transport given by ``pls serve --backend URL`` (plasmite-redis:
``redis://host:6379``), so that several stateless ``pls serve`` replicas behind
a load balancer serve the same pools.

The app asks a store for pools by bare name. ``identity`` lets it notice a
pool file replaced under a cached handle; a transport's pools are addressed
by name only, so their identity never changes. ``remote`` stores do network
I/O on every call, which the app keeps off its event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from plasmite_core.errors import NotFoundError, UsageError


class DirStore:
    """Pools as ``NAME.plasmite`` files in one directory."""

    remote = False

    def __init__(self, pool_dir: Path, lock_timeout: float | None = None) -> None:
        self.pool_dir = pool_dir
        self.label = str(pool_dir)
        self._lock_timeout = lock_timeout
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from plasmite_core.client import Client

            self.pool_dir.mkdir(parents=True, exist_ok=True)
            # Every lock wait of the storage workers (flushed appends, create, delete) is bounded alike.
            self._client = Client(self.pool_dir, lock_timeout=self._lock_timeout)
        return self._client

    def _ref(self, name: str) -> str:
        return str(self.pool_dir / f"{name}.plasmite")

    def identity(self, name: str) -> tuple[int, int]:
        try:
            st = os.stat(self._ref(name))
        except FileNotFoundError:
            raise NotFoundError(f"pool not found: {name}", name,
                                hint="create it first (POST /v0/pools) or check the name") from None
        return st.st_dev, st.st_ino

    def exists(self, name: str) -> bool:
        return os.path.exists(self._ref(name))

    def open(self, name: str):
        return self.client.open_pool(self._ref(name))

    def create(self, name: str, size: int):
        return self.client.create_pool(self._ref(name), size)

    def info(self, name: str):
        return self.client.pool_info(self._ref(name))

    def delete(self, name: str) -> None:
        self.client.delete_pool(self._ref(name))

    def list(self) -> list:
        return self.client.list_pools()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class TransportStore(DirStore):
    """Pools on a transport's server; the client is the transport's own."""

    remote = True

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        from plasmite_core import plugins

        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https", ""):
            raise UsageError("--backend takes the URL of a pool transport such as redis://host:6379",
                             hint="serve a directory with --dir; install plasmite-redis for redis:// backends")
        self._client = plugins.transport(scheme)(url)
        self.label = getattr(self._client, "url", scheme + "://")  # without credentials

    @property
    def client(self) -> Any:
        return self._client

    def _ref(self, name: str) -> str:
        return name

    def identity(self, name: str) -> tuple[int, int]:
        return (0, 0)

    def exists(self, name: str) -> bool:
        return True  # the transport's client raises NotFound itself


def open_store(config) -> DirStore:
    backend = getattr(config, "backend", None)
    if backend:
        return TransportStore(backend)
    return DirStore(Path(config.pool_dir), lock_timeout=config.lock_timeout_ms / 1000.0)
