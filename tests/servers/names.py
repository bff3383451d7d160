"""An MCP server whose tool names are not JavaScript identifiers, for the policy tests.

`get-data` and `get_data` become the same identifier in the TypeScript API, so
a config must deny one of them. Each tool returns its own original name.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("names")


@server.tool(name="delete-file")
def delete_file(path: str) -> str:
    """Delete the file at `path` (pretends to)."""
    return f"delete-file {path}"


@server.tool(name="get-data")
def get_data_dashed() -> str:
    """Return data."""
    return "get-data"


@server.tool(name="get_data")
def get_data_underscored() -> str:
    """Return data."""
    return "get_data"


@server.tool(name="read-file")
def read_file(path: str) -> str:
    """Read the file at `path` (pretends to)."""
    return f"read-file {path}"


@server.tool(name="create_thing")
def create_thing() -> str:
    """Create a thing (pretends to)."""
    return "create_thing"


if __name__ == "__main__":
    server.run()
