"""The transport conformance kit: a pytest suite any transport runs against itself.

A transport author subclasses ``TransportConformance`` in a test module and
provides one fixture, ``transport``, returning a ``TransportUnderTest``::

    import pytest
    from plasmite_core.testing import TransportConformance, TransportUnderTest

    class TestMyTransport(TransportConformance):
        @pytest.fixture
        def transport(self, tmp_path):
            yield TransportUnderTest(connect=lambda: my_factory(f"my://{tmp_path}"))

Every test of the kit then runs against the transport. Tests that need an
ability the transport does not declare (``Capability``) or a hook it did not
give (``small_pool``, ``unreachable``, ``unauthorized``) skip with the reason.

``process.ServiceProcess`` runs a service in a child process for end-to-end
tests; it needs no pytest, so the kit (which does) loads on first use.
"""

from typing import Any

__all__ = ["TransportConformance", "TransportUnderTest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import transport_kit

        return getattr(transport_kit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
