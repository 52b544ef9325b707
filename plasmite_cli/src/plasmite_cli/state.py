"""Per-invocation settings shared by commands (``ctx.obj``); free of click so
the one-shot fast path (``plasmite_cli.main``) can use it too."""

from __future__ import annotations


class CliState:
    """Per-invocation settings shared by commands (``ctx.obj``)."""

    def __init__(self, pool_dir: str | None, color: str) -> None:
        self._pool_dir = pool_dir
        self.color = color
        self._client = None

    @property
    def pool_dir(self):
        from pathlib import Path

        if self._pool_dir:
            return Path(self._pool_dir).expanduser()
        from plasmite_core.refs import default_pool_dir

        return default_pool_dir()

    def client(self):
        if self._client is None:
            from plasmite_core.client import Client

            self._client = Client(self.pool_dir)
        return self._client
