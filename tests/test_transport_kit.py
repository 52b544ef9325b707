"""The transport conformance kit (plasmite_core.testing) against every first-party transport.

The local engine runs it on a temporary pool directory; the HTTP transport
runs it against a real `pls serve` on a free loopback port (with a token, so
that a refused credential can be checked too).
"""

from __future__ import annotations

import pytest

from plasmite_core.client import Client
from plasmite_core.testing import TransportConformance, TransportUnderTest

TOKEN = "kit-token-0123456789"


class TestLocalTransport(TransportConformance):
    @pytest.fixture
    def transport(self, tmp_path):
        return TransportUnderTest(connect=lambda: Client(tmp_path))
