"""Plasmite over HTTP: remote protocol v0 server, web UI, remote client, `pls serve`.

Public names (imported lazily so that loading the plugin costs nothing):

- ``create_app`` / ``PlasmiteApp``: the ASGI application (mountable);
- ``ServeConfig``: its configuration;
- ``RemoteClient``, ``RemotePool``, ``RemoteTail``, ``RemoteLite3Tail``,
  ``RemoteError``: the synchronous client; ``AsyncRemoteClient``,
  ``AsyncRemotePool``, ``AsyncRemoteTail``, ``AsyncRemoteLite3Tail``: the
  asyncio client.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "create_app": "app",
    "PlasmiteApp": "app",
    "ServeConfig": "config",
    "RemoteClient": "client",
    "RemotePool": "client",
    "RemoteTail": "client",
    "RemoteLite3Tail": "client",
    "RemoteError": "client",
    "RemotePoolInfo": "client",
    "AsyncRemoteClient": "client",
    "AsyncRemotePool": "client",
    "AsyncRemoteTail": "client",
    "AsyncRemoteLite3Tail": "client",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plasmite_serve' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = sorted(_LAZY)
