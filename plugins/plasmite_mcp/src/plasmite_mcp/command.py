"""``pls mcp``: the MCP server on stdio, for an agent harness to spawn."""

from __future__ import annotations

import click

MCP_EPILOG = """\b
Harness configuration (mcpServers):
  {"plasmite": {"command": "pls", "args": ["mcp", "--dir", "/path/to/pools"]}}

\b
Speaks MCP (JSON-RPC 2.0, one message per line) on stdin/stdout until stdin
closes. Tools: plasmite_pool_list, plasmite_pool_create, plasmite_pool_info,
plasmite_pool_delete, plasmite_feed, plasmite_fetch, plasmite_read,
plasmite_wait; pools are also resources (plasmite:///pools/NAME).
Over HTTP, `pls serve` answers the same protocol at /mcp."""


@click.command(
    "mcp",
    epilog=MCP_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--dir",
    "mcp_dir",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Pool directory (default: the global --dir, $PLASMITE_DIR or ~/.plasmite/pools).",
)
@click.pass_context
def mcp(ctx: click.Context, mcp_dir: str | None) -> None:
    """Serve pools to AI agents over MCP on stdio."""
    import asyncio

    from plasmite_core.client import Client

    from . import __version__
    from .protocol import Dispatcher
    from .stdio import serve_stdio
    from .tools import PoolTools

    pool_dir = mcp_dir or getattr(ctx.find_root().obj, "pool_dir", None)
    dispatcher = Dispatcher(PoolTools(Client(pool_dir)), server_version=__version__)
    asyncio.run(serve_stdio(dispatcher))
