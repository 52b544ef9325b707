"""Plasmite's MCP server: pools as tools and resources for AI agents.

``protocol.Dispatcher`` is the transport-independent core (JSON-RPC 2.0 in,
JSON-RPC out) over ``tools.PoolTools`` (the tool bodies, run against any
pool client). ``stdio`` frames it for ``pls mcp``; ``http`` serves it as
``/mcp`` inside ``pls serve``. ``plugin`` registers both through the
``plasmite`` hooks and imports nothing heavy, so ``pls`` stays fast.
"""

__version__ = "0.1.0"
