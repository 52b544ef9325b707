"""The transport conformance kit (plasmite_core.testing) against every first-party transport.

The local engine runs it on a temporary pool directory; the HTTP transport
runs it against a real `pls serve` on a free loopback port (with a token, so
that a refused credential can be checked too); both get Busy and Corrupt
provoked on their pool files. The toy third-party `dirpool://` transport
(tests/support/dirpool_transport.py) runs it as loaded through PLASMITE_PLUGINS.
"""

from __future__ import annotations

import fcntl
import socket

import pytest

from plasmite_core.client import Client
from plasmite_core.testing import TransportConformance, TransportUnderTest

TOKEN = "kit-token-0123456789"


def _damage_then_open(pool_dir):
    """Overwrite a pool file's magic, then open the pool: Corrupt."""

    def provoke(client, name):
        with open(pool_dir / f"{name}.plasmite", "r+b") as fh:
            fh.write(b"\xff" * 8)
        client.open_pool(name)

    return provoke


def _delete_while_locked(pool_dir):
    """Hold the pool file's writer lock, then delete the pool: Busy."""

    def provoke(client, name):
        with open(pool_dir / f"{name}.plasmite", "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            client.delete_pool(name)

    return provoke


def _provocations(pool_dir):
    return {"Corrupt": _damage_then_open(pool_dir), "Busy": _delete_while_locked(pool_dir)}


class TestLocalTransport(TransportConformance):
    @pytest.fixture
    def transport(self, tmp_path):
        return TransportUnderTest(connect=lambda: Client(tmp_path), provoke=_provocations(tmp_path))


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    from plasmite_serve.testing import ServerProcess

    with ServerProcess(tmp_path_factory.mktemp("kit-http"), "--token", TOKEN) as server:
        yield server



class TestHttpTransport(TransportConformance):
    @pytest.fixture
    def transport(self, http_server):
        from plasmite_core import plugins

        factory = plugins.transport("http")
        return TransportUnderTest(
            connect=lambda: factory(http_server.base_url, token=TOKEN),
            unreachable=lambda: factory(f"http://127.0.0.1:{_dead_port()}", token=TOKEN),
            unauthorized=lambda: factory(http_server.base_url, token="wrong-token"),
            provoke=_provocations(http_server.pool_dir),  # the server's files, reached over HTTP
        )


@pytest.fixture
def dirpool_plugin(tmp_path, monkeypatch):
    """The toy third-party transport (tests/support/dirpool_transport.py), loaded as PLASMITE_PLUGINS names it."""
    from plasmite_core import plugins

    monkeypatch.setenv("PLASMITE_PLUGINS", "dirpool_transport")
    monkeypatch.setenv("DIRPOOL_ROOT", str(tmp_path / "dirpools"))
    plugins.reset()
    yield plugins.transport("dirpool")
    monkeypatch.delenv("PLASMITE_PLUGINS")
    plugins.reset()


class TestThirdPartyDirPoolTransport(TransportConformance):
    @pytest.fixture
    def transport(self, dirpool_plugin):
        return TransportUnderTest(connect=lambda: dirpool_plugin("dirpool://kit"))
