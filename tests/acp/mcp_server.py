"""A small MCP server for the agent-mode tests (tests/acp/client.py, tests/it/acp.rs).

Tools of the server `calc`:
  add(a, b)   the sum, marked read-only (so the agent gives it ACP kind `read`)
  mul(a, b)   the product, not marked (kind `other`: asks under the default permissions)
  echo(text)  the text back, read-only

Run over stdio by default, or `--http PORT` for streamable HTTP at http://127.0.0.1:PORT/mcp.
Written against the official MCP Python SDK (`mcp` 2.x, where FastMCP is `MCPServer`).
"""

import argparse
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("calc", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def mul(a: int, b: int) -> int:
    """Multiplies two integers."""
    return a * b


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on this port")
    args = parser.parse_args()
    if args.http is None:
        server.run()
    else:
        print(f"mcp calc server on http://127.0.0.1:{args.http}/mcp", file=sys.stderr, flush=True)
        server.run("streamable-http", host="127.0.0.1", port=args.http, streamable_http_path="/mcp")


if __name__ == "__main__":
    main()
