"""Which compiled twins run: one rule for every module that has one.

A module of plasmite_core with a C twin in the optional ``plasmite_speedups``
distribution asks ``compiled(name)`` once at import; None means the pure
path (the extension was not built, or ``PLASMITE_PURE`` is set to anything
but ``0``), whose Python code stays the reference.
"""

from __future__ import annotations

import os
import types


def compiled(name: str) -> types.ModuleType | None:
    """``plasmite_speedups.<name>``, or None for the pure path."""
    if os.environ.get("PLASMITE_PURE", "") not in ("", "0"):
        return None
    try:
        return __import__(f"plasmite_speedups.{name}", fromlist=[name])
    except ImportError:
        return None
